"""k3s: wait until the three cluster nodes report Ready (read as JSON, never as a table)."""

from __future__ import annotations

from typing import Any

from lab.cluster import condition
from lab.errors import RemoteCommandError
from lab.lab import CLUSTER_NODES
from lab.steps.base import Step, UpContext
from lab.waiting import wait_until


def ready_nodes(node_list: dict[str, Any]) -> list[str]:
    return sorted(item["metadata"]["name"] for item in node_list.get("items", []) if condition(item, "Ready"))


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
        def registered() -> list[str] | None:
            items = ctx.cluster.kubectl_json("get", "nodes").get("items", [])
            names = sorted(item["metadata"]["name"] for item in items)
            ctx.note(f"{len(names)}/{len(CLUSTER_NODES)} nodes registered")
            return names if len(names) >= len(CLUSTER_NODES) else None

        # The API server refuses connections while k3s starts: that is "not yet", not a failure.
        names = wait_until(
            registered,
            timeout=ctx.settings.ready_timeout,
            what=f"{len(CLUSTER_NODES)} nodes to register",
            interval=1.0,
            retry_on=(RemoteCommandError,),
            hint="see `invoke logs` for the k3s journal of each node",
        )
        # Once they exist, block on kubectl's own wait rather than polling from here.
        ctx.note("waiting for the nodes to be Ready")
        ctx.cluster.wait(*(f"node/{n}" for n in names), condition="Ready", timeout=ctx.settings.ready_timeout)
        ctx.detail(f"nodes Ready: {', '.join(names)}")
