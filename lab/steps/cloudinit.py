"""cloud-init: block on each node's own `cloud-init status --wait`, all nodes at once."""

from __future__ import annotations

from lab.errors import LabError
from lab.lab import NODE_NAMES
from lab.nodes import Node, in_parallel
from lab.steps.base import Step, UpContext

LOG = "/var/log/cloud-init-output.log"
TAIL_LINES = 50
# cloud-init 23.4+: 1 is a failure, 2 a recoverable error (deprecated keys and the like).
DEGRADED = 2


class CloudInit(Step):
    name = "cloud-init"
    title = "Waiting for cloud-init on every node"

    def done(self, ctx: UpContext) -> bool:
        # cloud-init runs once per instance: once seen finished, it stays finished.
        return ctx.lab.state.step_done(self.name)

    def run(self, ctx: UpContext) -> None:
        timeout = ctx.settings.ready_timeout

        def wait(node: Node) -> None:
            result = node.run("cloud-init status --wait", check=False, timeout=timeout)
            if result.ok:
                return
            if result.exit_code == DEGRADED:
                ctx.detail(f"cloud-init on {node.name} finished with warnings (see `invoke logs`)")
                return
            tail = node.run(f"sudo tail -n {TAIL_LINES} {LOG}", check=False, timeout=30).stdout.rstrip()
            status = (
                result.stdout.strip().splitlines()[-1]
                if result.stdout.strip()
                else f"exit {result.exit_code}"
            )
            lines = "\n".join(f"    {line}" for line in tail.splitlines()) or "    (no output)"
            raise LabError(f"cloud-init failed on {node.name} ({status}); last lines of {LOG}:\n{lines}")

        in_parallel(ctx.nodes(NODE_NAMES), wait)
