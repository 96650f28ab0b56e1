"""cloud-init: block on each node's own `cloud-init status --wait`, all nodes at once."""

from __future__ import annotations

import shlex

from lab.errors import LabError
from lab.lab import NODE_NAMES
from lab.nodes import Node, in_parallel
from lab.steps.base import Step, UpContext

LOG = "/var/log/cloud-init-output.log"
TAIL_LINES = 50
# cloud-init 23.4+: 1 is a failure, 2 a recoverable error (deprecated keys and the like).
DEGRADED = 2
RERUN_TIMEOUT = 900.0  # the user data's own waits (the k3s server's API) are bounded by 900 s


# cloud-init keeps a `#!` user data as this script and runs it once per instance (module
# scripts_user). The lab's user data is safe to run again, which gets a node past a transient
# failure (a download) without replacing it.
BOOT_SCRIPT = "/var/lib/cloud/instance/scripts/part-001"
# Nodes whose cloud-init failed at the last `up`: the next `up` re-runs their boot script.
FAILED_FACT = "cloud_init_failed"


class CloudInit(Step):
    name = "cloud-init"
    title = "Waiting for cloud-init on every node"

    def done(self, ctx: UpContext) -> bool:
        # cloud-init runs once per instance: once seen finished, it stays finished.
        return ctx.lab.state.step_done(self.name)

    def run(self, ctx: UpContext) -> None:
        timeout = ctx.settings.ready_timeout
        failed_before = set(ctx.lab.state.facts.get(FAILED_FACT) or [])
        failures: dict[str, bool] = {}  # node -> whether it was the boot script's re-run that failed

        def wait(node: Node) -> None:
            result = node.run("cloud-init status --wait", check=False, timeout=timeout)
            if result.ok:
                return
            if result.exit_code == DEGRADED:
                ctx.detail(f"cloud-init on {node.name} finished with warnings (see `invoke logs`)")
                return
            if node.name in failed_before:
                _rerun(ctx, node, failures)
                return
            tail = node.run(f"sudo tail -n {TAIL_LINES} {LOG}", check=False, timeout=30).stdout.rstrip()
            status = (
                result.stdout.strip().splitlines()[-1]
                if result.stdout.strip()
                else f"exit {result.exit_code}"
            )
            failures[node.name] = False
            raise LabError(f"cloud-init failed on {node.name} ({status}); last lines of {LOG}:\n{_indent(tail)}")

        try:
            in_parallel(ctx.nodes(NODE_NAMES), wait)
        except LabError as error:
            if not failures:
                raise
            ctx.lab.state.facts[FAILED_FACT] = sorted(failures)
            raise LabError(error.message, _fix(failures)) from error
        ctx.lab.state.facts.pop(FAILED_FACT, None)


def _rerun(ctx: UpContext, node: Node, failures: dict[str, bool]) -> None:
    """Run the node's boot script again, its output appended to the log cloud-init writes."""
    ctx.note(f"re-running the boot script of {node.name} (its cloud-init failed last time)")
    command = f"sudo {BOOT_SCRIPT} 2>&1 | sudo tee -a {LOG}"
    rerun = node.run(f"bash -o pipefail -c {shlex.quote(command)}", check=False, timeout=RERUN_TIMEOUT)
    if rerun.ok:
        ctx.detail(f"{node.name}: its boot script ran again and succeeded")
        return
    failures[node.name] = True
    tail = "\n".join(rerun.stdout.rstrip().splitlines()[-TAIL_LINES:])
    raise LabError(f"the boot script failed again on {node.name} (exit {rerun.exit_code}); last lines:\n{_indent(tail)}")


def _fix(failures: dict[str, bool]) -> str:
    """The fix that works: a re-run for a first failure (transient?), a new instance after that."""
    first = sorted(n for n, again in failures.items() if not again)
    again = sorted(n for n, again in failures.items() if again)
    fixes = []
    if first:
        fixes.append(
            f"if it was transient (a download), `invoke up` again re-runs the boot script of {', '.join(first)} "
            "(safe to re-run)"
        )
    for name in again + first:
        fixes.append(f"`invoke up --rebuild {name}` replaces {name} with a new instance (same private address)")
    return "; ".join(fixes)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines()) or "    (no output)"
