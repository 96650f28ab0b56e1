"""k3s: wait until the three cluster nodes report Ready (read as JSON, never as a table)."""

from __future__ import annotations

from typing import Any

from lab.errors import RemoteCommandError
from lab.lab import CLUSTER_NODES
from lab.steps.base import Step, UpContext
from lab.waiting import wait_until


def ready_nodes(node_list: dict[str, Any]) -> list[str]:
    ready = []
    for item in node_list.get("items", []):
        conditions = {c["type"]: c["status"] for c in item.get("status", {}).get("conditions", [])}
        if conditions.get("Ready") == "True":
            ready.append(item["metadata"]["name"])
    return sorted(ready)


class NodesReady(Step):
    name = "nodes-ready"
    title = f"Waiting for {len(CLUSTER_NODES)} Kubernetes nodes to be Ready"

    def _ready(self, ctx: UpContext) -> list[str]:
        return ready_nodes(ctx.cluster.kubectl_json("get", "nodes"))

    def done(self, ctx: UpContext) -> bool:
        if not ctx.lab.state.step_done(self.name):
            return False
        try:
            return len(self._ready(ctx)) >= len(CLUSTER_NODES)
        except RemoteCommandError:
            return False

    def run(self, ctx: UpContext) -> None:
        def enough() -> list[str] | None:
            ready = self._ready(ctx)
            ctx.note(f"{len(ready)}/{len(CLUSTER_NODES)} nodes Ready")
            return ready if len(ready) >= len(CLUSTER_NODES) else None

        # The API server refuses connections while k3s starts: that is "not yet", not a failure.
        ready = wait_until(
            enough,
            timeout=ctx.settings.ready_timeout,
            what=f"{len(CLUSTER_NODES)} Ready nodes",
            retry_on=(RemoteCommandError,),
            hint="see `invoke logs` for the k3s journal of each node",
        )
        ctx.detail(f"nodes Ready: {', '.join(ready)}")
