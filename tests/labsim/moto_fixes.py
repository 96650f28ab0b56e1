"""What moto 5 (getmoto/moto 5.2.5 here) lacks for the lab's stack to be deleted and its deadline
moved, added to the simulator only.

moto's CloudFormation cannot delete an AWS::EC2::RouteTable (the class has no `delete`), so the
VPC's deletion fails with DependencyViolation and DeleteStack errors out. Real CloudFormation
deletes a stack's resources in reverse dependency order, the SubnetRouteTableAssociation and the
RouteTable before the VPC (AWS CloudFormation User Guide, "Delete a stack"; EC2 DeleteRouteTable
requires the table to have no associations), so it disassociates and deletes the table; this
gives moto's RouteTable the same behaviour. The toolkit's own code has no workaround for it. moto's backends are process-wide, so once the simulator has run,
this holds for every moto server in the process: it must tolerate tables already removed.

A stack update that drops a resource from the template deletes it, and one that adds it back creates
a new one (AWS CloudFormation User Guide, "Update behaviors of stack resources"; `up --rebuild`
relies on it). moto 5 keeps the dropped resource's object and hands it back on the re-add (no new
instance), and cannot delete an AWS::EC2::EIP (it stays allocated). Both are given the real
behaviour here: a re-added resource is created anew, and a deleted EIP is released. And a terminated
instance's private address is free again (EC2 deletes its network interface: EC2 User Guide,
"Terminate Amazon EC2 instances"), where moto frees it only when the object is garbage-collected.
The same holds for the other fixes below (Elastic IPs, role policies, UpdateSchedule), each with
the AWS behaviour it restores.
"""

from __future__ import annotations

import json
from typing import Any

from moto.cloudformation.parsing import ResourceMap
from moto.ec2.models.elastic_ip_addresses import ElasticAddress
from moto.ec2.models.instances import Instance
from moto.ec2.models.route_tables import RouteTable
from moto.iam.models import Role
from moto.scheduler.responses import EventBridgeSchedulerResponse

_update_schedule = EventBridgeSchedulerResponse.update_schedule
_put_role_policy = Role.put_policy


def _delete(self: RouteTable, account_id: str, region_name: str) -> None:
    backend: Any = self.ec2_backend
    if self.id not in backend.route_tables:  # already removed through the EC2 API
        return
    for association_id in list(self._associations):
        backend.disassociate_route_table(association_id)
    backend.delete_route_table(self.id)


_moto_update = ResourceMap.update
_moto_terminate = Instance.terminate


def _terminate(self: Instance) -> Any:
    state = _moto_terminate(self)
    try:
        subnet: Any = self.ec2_backend.get_subnet(self.subnet_id)
    except Exception:  # no subnet (EC2-Classic style launch): nothing to free
        return state
    for address in list(getattr(self, "_private_ips", ())):
        subnet.del_subnet_ip(address)
    return state


def _update(self: ResourceMap, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> None:
    dropped = [name for name in self._resource_json_map if name not in template["Resources"]]
    _moto_update(self, template, parameters)
    for name in dropped:  # deleted: a later update that adds it back creates a new one
        self._parsed_resources.pop(name, None)


def _update_schedule_whole(self: EventBridgeSchedulerResponse) -> str:
    """UpdateSchedule replaces the whole schedule: "if you do not set an optional field in your
    request, that field will be set to its system-default value after the update" (EventBridge
    Scheduler API reference, UpdateSchedule), and ActionAfterCompletion defaults to NONE. moto
    keeps the old value instead, which would hide a request that forgets it."""
    body = _update_schedule(self)
    name = self.uri.split("?")[0].split("/")[-1]
    schedule = self.scheduler_backend.get_schedule(self._get_param("GroupName"), name)
    schedule.action_after_completion = self._get_param("ActionAfterCompletion") or "NONE"
    return body


def _release(self: ElasticAddress, account_id: str, region_name: str) -> None:
    """CloudFormation releases an AWS::EC2::EIP when it deletes it (its delete handler calls
    ReleaseAddress, which also disassociates); moto's EIP has no delete, so the address stays
    allocated after the stack is gone, and billed on AWS."""
    if self in self.ec2_backend.addresses:
        self.ec2_backend.release_address(address=self.public_ip)


def _put_role_policy_as_json(self: Role, policy_name: str, policy_json: Any) -> None:
    """IAM keeps a policy document as JSON text (GetRolePolicy returns it URL-encoded, IAM API
    reference); moto's CloudFormation hands it the template's mapping, which GetRolePolicy then
    returns as a Python repr."""
    text = policy_json if isinstance(policy_json, str) else json.dumps(policy_json)
    _put_role_policy(self, policy_name, text)


def apply() -> None:
    if not hasattr(RouteTable, "delete"):
        RouteTable.delete = _delete  # type: ignore[attr-defined]
    if EventBridgeSchedulerResponse.update_schedule is _update_schedule:
        EventBridgeSchedulerResponse.update_schedule = _update_schedule_whole  # type: ignore[method-assign]
    if not hasattr(ElasticAddress, "delete"):
        ElasticAddress.delete = _release  # type: ignore[attr-defined]
    if Role.put_policy is _put_role_policy:
        Role.put_policy = _put_role_policy_as_json  # type: ignore[method-assign]
    if Instance.terminate is _moto_terminate:
        Instance.terminate = _terminate  # type: ignore[method-assign]
    if ResourceMap.update is _moto_update:
        ResourceMap.update = _update  # type: ignore[method-assign]
