"""What moto 5 (getmoto/moto 5.2.5 here) lacks for the lab's stack to be deleted, added to the
simulator only.

moto's CloudFormation cannot delete an AWS::EC2::RouteTable (the class has no `delete`), so the
VPC's deletion fails with DependencyViolation and DeleteStack errors out. Real CloudFormation
deletes a stack's resources in reverse dependency order, the SubnetRouteTableAssociation and the
RouteTable before the VPC (AWS CloudFormation User Guide, "Delete a stack"; EC2 DeleteRouteTable
requires the table to have no associations), so it disassociates and deletes the table; this
gives moto's RouteTable the same behaviour. The toolkit's own code has no workaround for it. moto's backends are process-wide, so once the simulator has run,
this holds for every moto server in the process: it must tolerate tables already removed.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models.route_tables import RouteTable


def _delete(self: RouteTable, account_id: str, region_name: str) -> None:
    backend: Any = self.ec2_backend
    if self.id not in backend.route_tables:  # already removed through the EC2 API
        return
    for association_id in list(self._associations):
        backend.disassociate_route_table(association_id)
    backend.delete_route_table(self.id)


def apply() -> None:
    if not hasattr(RouteTable, "delete"):
        RouteTable.delete = _delete  # type: ignore[attr-defined]
