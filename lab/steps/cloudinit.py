"""cloud-init: block on each node's own `cloud-init status --wait`, all nodes at once.

`--wait` has no deadline of its own, so each node gets one derived from what its user data may
legitimately take (a slow but healthy boot is not a failure), unless `boot_timeout` is set.
The JSON status is read, not only the exit code: Ubuntu 22.04's cloud-init exits 0 for a
degraded boot (its `status-retain-recoverable-error-exit-code` patch), so recoverable errors are
only visible in `recoverable_errors`.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from lab.errors import LabError
from lab.lab import NODE_NAMES
from lab.nodes import CommandResult, Node, in_parallel
from lab.steps.base import Step, UpContext
from lab.template import load_template

LOG = "/var/log/cloud-init-output.log"
TAIL_LINES = 50
STATUS = "cloud-init status --format json"
# coreutils `timeout` exits 124 when it had to stop the command.
TIMED_OUT = 124
# Upstream cloud-init (without Ubuntu's patch) exits 2 for a degraded boot, 1 for an error.
ERROR, DEGRADED = 1, 2
# What the user data's own work may take once nothing makes it wait: apt update and install,
# the k3s download and install, each under `retry` (5 attempts, 10+20+30+40 s apart).
WORK_ALLOWANCE = 300.0
APT_LOCK = re.compile(r"DPkg::Lock::Timeout=(\d+)")
SERVER_WAIT = re.compile(r"\$\(\(SECONDS \+ (\d+)\)\)")
RERUN_TIMEOUT = 900.0  # the user data's own waits (the k3s server's API) are bounded by 900 s
# cloud-init keeps a `#!` user data as this script and runs it once per instance (module
# scripts_user). The lab's user data is safe to run again, which gets a node past a transient
# failure (a download) without replacing it.
BOOT_SCRIPT = "/var/lib/cloud/instance/scripts/part-001"
# Nodes whose cloud-init failed at the last `up`: the next `up` re-runs their boot script.
FAILED_FACT = "cloud_init_failed"


def boot_deadlines(template: dict[str, Any] | None = None) -> dict[str, float]:
    """Seconds each node's cloud-init may take, read from the template's user data: every apt
    command may wait its `DPkg::Lock::Timeout` for the lock (unattended-upgrades holds it on a
    first boot), an agent may wait its deadline for the k3s server, plus the work itself."""
    resources = (template or load_template())["Resources"]
    deadlines = {}
    for resource in resources.values():
        if resource.get("Type") != "AWS::EC2::Instance":
            continue
        props = resource["Properties"]
        name = next((t["Value"] for t in props.get("Tags", []) if t["Key"] == "Name"), None)
        script = _user_data_text(props.get("UserData"))
        waits = [int(s) for s in APT_LOCK.findall(script)] + [int(s) for s in SERVER_WAIT.findall(script)]
        if name:
            deadlines[name] = sum(waits) + WORK_ALLOWANCE
    return deadlines


def _user_data_text(value: Any) -> str:
    """The script inside `Fn::Base64` / `Fn::Sub` (short forms already expanded by the loader)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "".join(_user_data_text(v) for v in value.values())
    if isinstance(value, list):
        return "".join(_user_data_text(v) for v in value if isinstance(v, str | dict))
    return ""


def parse_status(text: str) -> dict[str, Any] | None:
    try:
        status = json.loads(text)
    except ValueError:
        return None
    return status if isinstance(status, dict) else None


def recoverable(status: dict[str, Any]) -> list[str]:
    """`{"WARNING": ["msg", ...], "DEPRECATED": [...]}` -> ["WARNING: msg", ...]."""
    found = status.get("recoverable_errors") or {}
    if not isinstance(found, dict):
        return []
    return [f"{level}: {_one_line(msg)}" for level, messages in found.items() for msg in messages or []]


def _one_line(text: object, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class BootFailed(LabError):
    """cloud-init finished with an error (not a timeout): the boot script's re-run may fix it."""


class CloudInit(Step):
    name = "cloud-init"
    title = "Waiting for cloud-init on every node"

    def done(self, ctx: UpContext) -> bool:
        # cloud-init runs once per instance: once seen finished, it stays finished.
        return ctx.lab.state.step_done(self.name)

    def run(self, ctx: UpContext) -> None:
        configured = ctx.settings.boot_timeout
        derived = boot_deadlines()
        failed_before = set(ctx.lab.state.facts.get(FAILED_FACT) or [])
        failures: dict[str, bool] = {}  # node -> whether it was the boot script's re-run that failed

        def wait(node: Node) -> None:
            deadline = configured or derived.get(node.name, WORK_ALLOWANCE)
            result = node.run(
                f"timeout {int(deadline)} cloud-init status --wait --format json",
                check=False,
                timeout=deadline + 60,
            )
            try:
                self._judge(ctx, node, result, deadline, configured > 0)
            except BootFailed:
                if node.name in failed_before:
                    _rerun(ctx, node, failures)
                    return
                failures[node.name] = False
                raise

        try:
            in_parallel(ctx.nodes(NODE_NAMES), wait)
        except LabError as error:
            if not failures:
                raise
            ctx.lab.state.facts[FAILED_FACT] = sorted(failures)
            raise LabError(error.message, _fix(failures)) from error
        ctx.lab.state.facts.pop(FAILED_FACT, None)

    def _judge(
        self, ctx: UpContext, node: Node, result: CommandResult, deadline: float, set_by_user: bool
    ) -> None:
        if result.exit_code == TIMED_OUT:
            status = parse_status(node.run(STATUS, check=False, timeout=30).stdout) or {}
            stage = status.get("stage") or status.get("extended_status") or "unknown"
            origin = "boot_timeout" if set_by_user else "what its user data may take"
            raise LabError(
                f"cloud-init on {node.name} still running after {deadline:.0f}s ({origin}), "
                f"in stage {stage}; last lines of {LOG}:\n{self._tail(node)}",
                "if the boot is only slow, raise boot_timeout (LAB_BOOT_TIMEOUT) and run `invoke up` again",
            )
        status = parse_status(result.stdout)
        errors = (status or {}).get("errors") or []
        if result.exit_code == ERROR or errors or (status is None and result.exit_code not in (0, DEGRADED)):
            summary = "; ".join(_one_line(e) for e in errors) or (
                _one_line(status.get("extended_status")) if status else f"exit {result.exit_code}"
            )
            raise BootFailed(
                f"cloud-init failed on {node.name} ({summary}); last lines of {LOG}:\n{self._tail(node)}"
            )
        warnings = recoverable(status or {})
        if warnings or result.exit_code == DEGRADED:
            listed = "; ".join(warnings) or "degraded"
            ctx.warn(
                f"cloud-init on {node.name} finished with recoverable errors: {listed} (see `invoke logs`)"
            )

    @staticmethod
    def _tail(node: Node) -> str:
        tail = node.run(f"sudo tail -n {TAIL_LINES} {LOG}", check=False, timeout=30).stdout.rstrip()
        return "\n".join(f"    {line}" for line in tail.splitlines()) or "    (no output)"


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
