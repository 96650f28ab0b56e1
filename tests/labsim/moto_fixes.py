"""What moto 5 lacks for the lab's stack to be deleted, added to the simulator only.

moto's CloudFormation cannot delete an AWS::EC2::RouteTable (the class has no `delete`), so the
VPC's deletion fails with DependencyViolation and DeleteStack errors out. Real CloudFormation
disassociates and deletes the table; this gives moto's RouteTable the same behaviour. The toolkit's
own code has no workaround for it. moto's backends are process-wide, so once the simulator has run,
this holds for every moto server in the process: it must tolerate tables already removed.

A stack update that drops a resource from the template deletes it, and one that adds it back creates
a new one (AWS CloudFormation User Guide, "Update behaviors of stack resources"; `up --rebuild`
relies on it). moto 5 keeps the dropped resource's object and hands it back on the re-add (no new
instance), and cannot delete an AWS::EC2::EIP (it stays allocated). Both are given the real
behaviour here: a re-added resource is created anew, and a deleted EIP is released. And a terminated
instance's private address is free again (EC2 deletes its network interface: EC2 User Guide,
"Terminate Amazon EC2 instances"), where moto frees it only when the object is garbage-collected.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.parsing import ResourceMap
from moto.ec2.models.elastic_ip_addresses import ElasticAddress
from moto.ec2.models.instances import Instance
from moto.ec2.models.route_tables import RouteTable


def _delete(self: RouteTable, account_id: str, region_name: str) -> None:
    backend: Any = self.ec2_backend
    if self.id not in backend.route_tables:  # already removed through the EC2 API
        return
    for association_id in list(self._associations):
        backend.disassociate_route_table(association_id)
    backend.delete_route_table(self.id)


def _release(self: ElasticAddress, account_id: str, region_name: str) -> None:
    backend: Any = self.ec2_backend
    if self in backend.addresses:
        backend.release_address(address=self.public_ip)


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


def apply() -> None:
    if not hasattr(RouteTable, "delete"):
        RouteTable.delete = _delete  # type: ignore[attr-defined]
    if not hasattr(ElasticAddress, "delete"):
        ElasticAddress.delete = _release  # type: ignore[attr-defined]
    if Instance.terminate is _moto_terminate:
        Instance.terminate = _terminate  # type: ignore[method-assign]
    if ResourceMap.update is _moto_update:
        ResourceMap.update = _update  # type: ignore[method-assign]
