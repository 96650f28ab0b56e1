"""The scenario engine: pre-flight, mesh and snapshots, steps with retrying assertions, evidence on
failure, then cleanup (always, unless --keep) and the leak check.

Ctrl-C: the first press stops the scenario at the next cluster call and cleans up; a second one
abandons the cleanup and says what was left. Remote commands are never killed half-way, so the
cleanup knows what was applied. An unexpected error (a bug) is recorded and the cleanup and the
leak check still run; the result carries it for the CLI to report.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.markup import escape

from lab.errors import LabError
from lab.progress import Progress, StepHandle
from lab.scenario import evidence, pending
from lab.scenario.assertions import Observed, node_ip_refs
from lab.scenario.cluster_state import (
    Baseline,
    ClusterLike,
    Shell,
    cluster_time,
    describe,
    leaks,
    mesh_with_policy,
    outbound_policy,
    take_baseline,
    write_mesh,
)
from lab.scenario.interrupts import Guarded, Interrupts
from lab.scenario.model import Apply, Exec, HostLogs, Logs, Patch, Scenario, Step, Wait
from lab.scenario.results import FAILED, LEAK_CHECK, PASSED, Case, ScenarioResult
from lab.scenario.undo import Undo
from lab.state import write_private
from lab.trace import live, offline
from lab.trace.join import Target
from lab.trace.logline import parse_time
from lab.trace.proxylog import since as lines_since
from lab.trace.proxylog import window_start
from lab.waiting import Timeout, wait_until

Analyze = Callable[..., list[Any]]
Hosts = Callable[[str], Shell]  # a lab host by name (`lab.lab.Lab.node`)
# How much of a host's log a hostLogs step reads: the end of it, where the request of interest is.
HOST_LOG_LINES = 20000
# An access log's own stamps (nginx and Apache `combined`: `[01/Dec/2024:14:05:03 +0000]`).
_ACCESS_STAMP = re.compile(r"\[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]")


class StepFailed(Exception):
    """A step did not do what it should: the scenario stops there (the failure is already recorded)."""


class Engine:
    def __init__(
        self,
        cluster: ClusterLike,
        progress: Progress,
        lab_dir: Path,
        *,
        analyze: Analyze | None = None,
        interrupts: Interrupts | None = None,
        step_timeout_cap: float | None = None,
        clock: Callable[[], datetime] | None = None,
        hosts: Hosts | None = None,
    ) -> None:
        self.interrupts = interrupts or Interrupts()
        self.raw = cluster
        self.cluster = Guarded(cluster, self.interrupts, 1)
        self.progress = progress
        self.lab_dir = lab_dir
        self.reports_dir = lab_dir / "reports"
        self.kept_dir = lab_dir / "kept"
        self.analyze = analyze
        self.cap = step_timeout_cap
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.hosts = hosts
        self._since = ""

    # -- the run -----------------------------------------------------------------------------------
    def run(self, scenario: Scenario, keep: bool = False) -> ScenarioResult:
        analyze = self.analyze or load_analyzer()
        started, now = time.monotonic(), self.clock()
        result = ScenarioResult(scenario, started_at=_rfc3339(now))
        result.report_dir = self.reports_dir / f"{scenario.name}-{now:%Y%m%dT%H%M%SZ}"
        self._announce(scenario)
        undo, baseline, since = Undo(), None, ""
        try:
            self._finish_kept(result)
            self._preflight(scenario, analyze, result)
            with self.progress.step("snapshot namespaces, Istio resources and mesh config"):
                since = cluster_time(self.cluster)
                baseline = take_baseline(self.cluster, scenario.preserve)
            self._prepare(scenario, baseline, undo)
            for step in scenario.steps:
                self._run_step(step, result, undo)
        except StepFailed:
            pass
        except KeyboardInterrupt:
            result.interrupted = True
            self.progress.warn("interrupted: cleaning up first (press Ctrl-C again to abandon the cleanup)")
        except LabError as error:  # reading the baseline, editing the mesh, a kept record
            result.error("prepare the cluster", str(error))
            self.progress.info(f"  [red]{escape(str(error))}[/]")
        except Exception as error:
            self._unexpected(result, "unexpected error", error)
        result.skip_unrun(
            "not run: an earlier step failed" if not result.interrupted else "not run: interrupted"
        )
        if result.problems and not result.interrupted and baseline is not None:
            self._collect_evidence(scenario, result, since)
        if keep:
            self._keep(scenario, undo, result)
        elif baseline is not None and self._cleanup(undo, result):
            self._leak_check(scenario, baseline, result)
        result.interrupted = result.interrupted or self.interrupts.count > 0
        result.seconds = time.monotonic() - started
        write_private(result.report_dir / "result.json", result.to_json() + "\n", mode=0o644)
        self._summarize(result)
        return result

    def _announce(self, scenario: Scenario) -> None:
        self.progress.info(f"[bold]{scenario.name}[/]: {escape(scenario.title)}")
        for line in scenario.teaches.splitlines():
            self.progress.info(f"  {escape(line)}")

    def _preflight(self, scenario: Scenario, analyze: Analyze, result: ScenarioResult) -> None:
        files = scenario.manifests
        plural = "" if len(files) == 1 else "s"
        with self.progress.step(f"pre-flight: analyze {len(files)} manifest{plural}") as handle:
            findings = analyze(files, registry_only=scenario.registry_only)
            for f in findings:
                lesson = " (expected: part of the lesson)" if f.code in scenario.expected_findings else ""
                where = f"{f.kind} {f.namespace}/{f.name}" if f.namespace else f"{f.kind} {f.name}"
                handle.detail(escape(f"{f.severity} {f.code} {where}: {f.message}{lesson}"))
            blocking = [
                f for f in findings if f.severity == "error" and f.code not in scenario.expected_findings
            ]
            if blocking:
                message = "; ".join(f"{f.code} {f.name}: {f.message}" for f in blocking)
                codes = ", ".join(sorted({f.code for f in blocking}))
                # A lesson may be meant to fail: say how to run it anyway.
                lesson = f"if the lesson is meant to show this, list them under expectedFindings: [{codes}]"
                handle.detail(escape(f"{lesson} (docs/scenarios.md)"))
                result.error(
                    "pre-flight analysis",
                    f"the analyzer found errors: {message} ({lesson}; docs/scenarios.md)",
                    handle.elapsed,
                )
                raise StepFailed
            missing = sorted(scenario.expected_findings - {f.code for f in findings})
            if missing:
                handle.detail(
                    f"note: the lesson expects {', '.join(missing)} but the analyzer did not report it"
                )

    def _prepare(self, scenario: Scenario, baseline: Baseline, undo: Undo) -> None:
        if scenario.preserve:
            undo.objects = baseline.objects
            self.progress.info(f"  saved {describe(baseline.objects)}: restored exactly in cleanup")
        policy = scenario.outbound_policy
        if policy and outbound_policy(baseline.mesh) != policy:
            with self.progress.step(f"mesh: outboundTrafficPolicy {policy}") as handle:
                undo.mesh = baseline.mesh
                write_mesh(self.cluster, mesh_with_policy(baseline.mesh, policy))
                handle.detail("istiod pushes it to the sidecars in seconds: the assertions retry until then")

    # -- steps ----------------------------------------------------------------------------------------
    def _run_step(self, step: Step, result: ScenarioResult, undo: Undo) -> None:
        timeout = min(step.timeout, self.cap) if self.cap else step.timeout
        action = step.action
        with self.progress.step(step.name) as handle:
            try:
                if isinstance(action, Apply):
                    self._apply(action, timeout, undo, handle, result.scenario)
                elif isinstance(action, Wait):
                    self._wait(action, timeout)
                elif isinstance(action, Patch):
                    self._patch(action, timeout, handle)
                elif isinstance(action, HostLogs):
                    since = self._since
                    observe = lambda: self._host_logs(step, action, since)  # noqa: E731
                    self._check(step, timeout, observe, result, handle)
                elif isinstance(action, Exec):
                    self._since = cluster_time(self.cluster)
                    if step.traces_path:
                        observe = lambda: self._exec_traced(step, action, timeout, result)  # noqa: E731
                    else:
                        observe = lambda: self._exec(action, timeout)  # noqa: E731
                    self._check(step, timeout, observe, result, handle)
                else:
                    since = self._since
                    self._check(step, timeout, lambda: self._logs(action, since), result, handle)
            except LabError as error:
                result.error(step.name, str(error), handle.elapsed)
                handle.detail(f"[red]{escape(str(error))}[/]")
                raise StepFailed from None

    def _apply(
        self, action: Apply, timeout: float, undo: Undo, handle: StepHandle, scenario: Scenario
    ) -> None:
        for path in action.files:
            undo.add_manifest(path, scenario.preserve)  # before applying: a partial apply is cleaned up too
            applied = self.cluster.kubectl("apply", "-f", "-", stdin=path.read_text(), timeout=timeout)
            for line in applied.stdout.strip().splitlines():
                handle.detail(escape(line))

    def _wait(self, action: Wait, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if action.deployment:
            targets, condition, selector = [f"deployment/{action.deployment}"], "Available", None
        else:
            targets, condition, selector = ["pod"], "Ready", action.pods

        def attempt() -> bool:
            left = max(1.0, deadline - time.monotonic())
            self.cluster.wait(
                *targets, condition=condition, namespace=action.namespace, timeout=left, selector=selector
            )
            return True

        # kubectl wait fails at once while nothing matches yet (pods not created): that is "not yet".
        what = f"{' '.join(targets)}{f' -l {selector}' if selector else ''} {condition} in {action.namespace}"
        wait_until(attempt, timeout=timeout, what=what, first=1.0, interval=4.0, retry_on=(LabError,))

    def _patch(self, action: Patch, timeout: float, handle: StepHandle) -> None:
        """Patch, then block on the rollout: the next step must meet the new pods, not the old ones."""
        where = ("-n", action.namespace)
        kind = action.kind.lower()
        patched = self.cluster.kubectl(
            "patch", kind, action.name, *where, "--type", "merge", "-p", action.merge, timeout=timeout
        )
        handle.detail(escape(patched.stdout.strip()))
        rolled = self.cluster.kubectl(
            "rollout",
            "status",
            f"{kind}/{action.name}",
            *where,
            f"--timeout={int(timeout)}s",
            timeout=timeout + 30,
        )
        for line in rolled.stdout.strip().splitlines()[-1:]:
            handle.detail(escape(line))

    def _host_logs(self, step: Step, action: HostLogs, since: str) -> Observed:
        """The host's log lines stamped in or after the second the last exec step began (an access
        log stamps whole seconds), plus the node addresses its expectations name."""
        if self.hosts is None:
            raise LabError(f"no SSH access to {action.node} here: this engine was built without lab hosts")
        if self.interrupts.count:
            raise KeyboardInterrupt
        start = parse_time(since)
        assert start is not None  # cluster_time checked the shape
        addresses = self._node_addresses(step)
        command = f"sudo tail -n {HOST_LOG_LINES} -- {shlex.quote(action.path)}"
        read = self.hosts(action.node).run(command, check=False, timeout=60)
        if not read.ok:
            raise LabError(
                f"{action.node}: cannot read {action.path}: {(read.stderr or read.stdout).strip()[-200:]}",
                f"check that the server writing it runs on {action.node}",
            )
        floor = start.replace(microsecond=0)
        kept = [
            line for line in read.stdout.splitlines() if (_access_stamp(line) or floor - _SECOND) >= floor
        ]
        return Observed("\n".join(kept), addresses=addresses)

    def _node_addresses(self, step: Step) -> dict[str, list[str]]:
        """`NAMESPACE/POD-or-SELECTOR` -> the addresses of the nodes its running pods are on."""
        found: dict[str, list[str]] = {}
        for ref in dict.fromkeys(r for a in step.assertions for r in node_ip_refs(str(a.value))):
            namespace, _, what = ref.partition("/")
            source = ["-l", what] if "=" in what else [what]
            listing = self.cluster.kubectl_json("get", "pods", "-n", namespace, *source)
            pods = listing.get("items", [listing]) if listing.get("kind") == "List" else [listing]
            found[ref] = sorted(
                {
                    p["status"]["hostIP"]
                    for p in pods
                    if not p.get("metadata", {}).get("deletionTimestamp")
                    and (p.get("status") or {}).get("hostIP")
                }
            )
        return found

    def _exec(self, action: Exec, timeout: float) -> Observed:
        t = action.target
        ran = self.cluster.kubectl(
            "exec",
            "-n",
            t.namespace,
            t.pod,
            "-c",
            t.container,
            "--",
            *action.command,
            check=False,
            timeout=timeout,
        )
        return Observed(ran.stdout, ran.exit_code, ran.stderr)

    def _exec_traced(self, step: Step, action: Exec, timeout: float, result: ScenarioResult) -> Observed:
        """The exec, then the trace of its request from the proxies' logs (lab/trace), saved in the
        `invoke trace --logs` layout under the report folder."""
        t = action.target
        proxies = live.discover(self.cluster, t.namespace, t.pod)
        start = live.start_time(self.cluster)
        command = live.with_remote_ip(list(action.command))
        ran = self.cluster.kubectl(
            "exec", "-n", t.namespace, t.pod, "-c", t.container, "--", *command, check=False, timeout=timeout
        )
        ip, stderr = live.remote_ip(ran.stderr)
        target = Target.parse(live.curl_url(action.command), ip, start)
        found, client, gateways = live.settle(
            self.cluster, proxies, target, seconds=min(live.SETTLE_SECONDS, timeout)
        )
        if result.report_dir is not None:
            offline.write_folder(result.report_dir / _slug(step.name), [client, *gateways], target)
        labels = {g.proxy: dict(g.labels) for g in proxies.gateways}
        return Observed(ran.stdout, ran.exit_code, stderr, trace=found, gateway_labels=labels)

    def _logs(self, action: Logs, since: str) -> Observed:
        # --since-time reaches the kubelet in whole seconds: ask a second earlier, keep the lines
        # stamped at or after the exec began (lab/trace/proxylog.py).
        start = parse_time(since)
        assert start is not None  # cluster_time checked the shape
        source = ["-l", action.selector] if action.selector else [action.pod or ""]
        read = self.cluster.kubectl(
            "logs",
            "-n",
            action.namespace,
            *source,
            "-c",
            action.container,
            f"--since-time={window_start(start)}",
            "--timestamps",
            "--tail=-1",
            check=False,
            timeout=60,
        )
        if not read.ok:
            raise LabError(f"kubectl logs failed: {(read.stderr or read.stdout).strip()[-200:]}")
        return Observed(lines_since(read.stdout, start))

    def _check(
        self,
        step: Step,
        timeout: float,
        observe: Callable[[], Observed],
        result: ScenarioResult,
        handle: StepHandle,
    ) -> None:
        """Observe until every positive assertion holds or the timeout passes; judge negatives on that output."""
        began = time.monotonic()
        last: list[tuple[bool, str]] = []
        passed_at: dict[int, float] = {}
        error: list[str] = []

        def attempt() -> bool:
            try:
                seen = observe()
            except LabError as failure:
                error[:] = [str(failure)]
                raise
            error.clear()
            last[:] = [a.check(seen) for a in step.assertions]
            for i, (ok, _) in enumerate(last):
                if not ok:
                    passed_at.pop(i, None)
                else:
                    passed_at.setdefault(i, time.monotonic() - began)
            return all(ok for (ok, _), a in zip(last, step.assertions, strict=True) if not a.negative)

        with contextlib.suppress(Timeout):  # the results below say what did not hold
            wait_until(
                attempt, timeout=timeout, what=step.name, first=0.5, interval=4.0, retry_on=(LabError,)
            )
        elapsed = time.monotonic() - began
        failed = False
        for i, assertion in enumerate(step.assertions):
            ok, received = last[i] if last else (False, error[0] if error else "nothing observed")
            if error and not ok:
                received = f"{received}\n(last attempt: {error[0]})"
            case = result.record(
                step.name, assertion, PASSED if ok else FAILED, passed_at.get(i, elapsed), received
            )
            self._show(handle, case)
            failed = failed or not ok
        if failed:
            raise StepFailed

    def _show(self, handle: StepHandle, case: Case) -> None:
        expected = case.expected
        if case.status == PASSED:
            handle.detail(f"[green]✓[/] {escape(expected)} ({case.seconds:.1f}s)")
            return
        handle.detail(f"[red]✗[/] {escape(expected)} ({case.seconds:.1f}s)")
        handle.detail(f"    expected: {escape(expected)}")
        received = case.received.splitlines() or [""]
        handle.detail(f"    received: {escape(received[0])}")
        for line in received[1:]:
            handle.detail(f"              {escape(line)}")

    # -- after the steps ---------------------------------------------------------------------------------
    def _unexpected(self, result: ScenarioResult, what: str, error: Exception) -> None:
        """A bug, not a lesson: record it and carry on to the cleanup."""
        result.bug = result.bug or error
        message = f"unexpected {type(error).__name__}: {error}"
        result.error(what, message)
        self.progress.info(f"  [red]{escape(what)}: {escape(message)}[/]")

    def _collect_evidence(self, scenario: Scenario, result: ScenarioResult, since: str) -> None:
        assert result.report_dir is not None
        try:
            with self.progress.step("collect evidence") as handle:
                names = evidence.collect(self.cluster, scenario, result.report_dir, since)
                handle.detail(f"{result.report_dir}/: {', '.join(names)}")
        except KeyboardInterrupt:
            result.interrupted = True
        except Exception as error:
            self._unexpected(result, "collect evidence", error)

    def _cleanup(self, undo: Undo, result: ScenarioResult, owner: str | None = None) -> bool:
        """Undo everything; True when it ran to the end (errors are recorded, the rest still runs).
        Abandoned, what is left is saved in the lab's state as a pending cleanup of `owner`."""
        cluster = Guarded(self.raw, self.interrupts, 2, finish_current=True)
        actions = undo.actions()
        for index, (label, action) in enumerate(actions):
            try:
                with self.progress.step(f"clean up: {label}"):
                    action(cluster)
            except LabError as error:
                result.error(f"clean up: {label}", str(error))
            except KeyboardInterrupt:
                left = [name for name, _ in actions[index:]]
                pending.save(self.lab_dir, owner or result.scenario.name, undo.after(index))
                self.progress.warn(f"cleanup abandoned; still to do: {'; '.join(left)}")
                self.progress.warn("saved as a pending cleanup: the next `invoke scenario`, `trace` or `reset` finishes it")
                result.interrupted = True
                result.error("clean up", f"abandoned (Ctrl-C twice); still to do: {'; '.join(left)}")
                return False
            except Exception as error:  # the other undo actions still run
                self._unexpected(result, f"clean up: {label}", error)
        return True

    def _leak_check(self, scenario: Scenario, baseline: Baseline, result: ScenarioResult) -> None:
        try:
            with self.progress.step(
                "leak check: namespaces, Istio resources, mesh config, saved objects"
            ) as handle:
                found = leaks(
                    baseline,
                    take_baseline(
                        Guarded(self.raw, self.interrupts, 2, finish_current=True), scenario.preserve
                    ),
                )
                case = Case(
                    LEAK_CHECK,
                    FAILED if found else PASSED,
                    handle.elapsed,
                    "as before the scenario",
                    "; ".join(found),
                )
                result.cases.append(case)
                for item in found:
                    handle.detail(f"[red]{escape(item)}[/]")
                if found:
                    raise StepFailed
        except StepFailed:
            pass
        except LabError as error:
            result.error(LEAK_CHECK, str(error))
        except KeyboardInterrupt:
            result.interrupted = True
        except Exception as error:
            self._unexpected(result, LEAK_CHECK, error)

    def _keep(self, scenario: Scenario, undo: Undo, result: ScenarioResult) -> None:
        result.kept = True
        if not (undo.deletes or undo.objects or undo.mesh is not None):
            return
        write_private(self.kept_dir / f"{scenario.name}.json", undo.to_json() + "\n")
        self.progress.info("kept for inspection (--keep):")
        for line in undo.summary():
            self.progress.info(f"  - {escape(line)}")
        self.progress.info("  the next `invoke scenario` run cleans these up before it starts")

    def _finish_kept(self, result: ScenarioResult) -> None:
        """Clean up what an earlier `--keep` run left, and a cleanup left pending by a second Ctrl-C,
        so this run starts from the installed lab."""
        left = pending.load(self.lab_dir)
        if left is not None:
            owner, undo = left
            self.progress.info(f"finishing the cleanup that {owner} left pending")
            errors_before = len(result.problems)
            if not self._cleanup(undo, result, owner) or len(result.problems) > errors_before:
                raise StepFailed
            pending.clear(self.lab_dir)
        for record in sorted(self.kept_dir.glob("*.json")) if self.kept_dir.is_dir() else []:
            self.progress.info(f"cleaning up what `--keep` left of {record.stem}")
            errors_before = len(result.problems)
            if not self._cleanup(Undo.from_file(record), result) or len(result.problems) > errors_before:
                raise StepFailed
            record.unlink()

    def _summarize(self, result: ScenarioResult) -> None:
        name, seconds = result.scenario.name, result.seconds
        if result.passed:
            count = sum(c.status == PASSED for c in result.cases)
            self.progress.info(f"[green]✓[/] {name} passed: {count} checks ({seconds:.1f}s)")
            if result.scenario.explains:
                self.progress.info("[bold]why[/]:")
                for line in result.scenario.explains.splitlines():
                    self.progress.info(f"  {escape(line)}")
            return
        if result.interrupted:
            self.progress.warn(f"{name} interrupted after {seconds:.1f}s")
            return
        first = result.problems[0].name if result.problems else "not every check ran"
        self.progress.info(
            f"[red]✗[/] {name} failed: {escape(first)}; evidence in {escape(str(result.report_dir))}/"
        )


def load_analyzer() -> Analyze:
    try:
        from lab.analyzer import analyze_paths
    except ImportError as error:
        if error.name and not error.name.startswith("lab.analyzer"):
            raise
        raise LabError(
            "the egress analyzer (lab.analyzer) is not available, so the scenario pre-flight cannot run",
            "install the whole project: pip install -e .",
        ) from None
    return analyze_paths


_SECOND = timedelta(seconds=1)


def _access_stamp(line: str) -> datetime | None:
    match = _ACCESS_STAMP.search(line)
    if not match:
        return None
    return datetime.strptime(match[1], "%d/%b/%Y:%H:%M:%S %z").astimezone(timezone.utc)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "step"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
