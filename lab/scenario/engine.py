"""The scenario engine: pre-flight, mesh and snapshots, steps with retrying assertions, evidence on
failure, then cleanup (always, unless --keep) and the leak check.

Ctrl-C: the first press stops the scenario at the next cluster call and cleans up; a second one
abandons the cleanup and says what was left. Remote commands are never killed half-way, so the
cleanup knows what was applied. An unexpected error (a bug) is recorded and the cleanup and the
leak check still run; the result carries it for the CLI to report.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.markup import escape

from lab.errors import LabError
from lab.progress import Progress, StepHandle
from lab.scenario import evidence, pending
from lab.scenario.assertions import Observed
from lab.scenario.cluster_state import (
    Baseline,
    ClusterLike,
    cluster_time,
    describe,
    leaks,
    mesh_with_policy,
    outbound_policy,
    take_baseline,
    write_mesh,
)
from lab.scenario.interrupts import Guarded, Interrupts
from lab.scenario.model import Apply, Exec, Logs, Scenario, Step, Wait
from lab.scenario.results import FAILED, LEAK_CHECK, PASSED, Case, ScenarioResult
from lab.scenario.undo import Undo
from lab.state import write_private
from lab.waiting import Timeout, wait_until

Analyze = Callable[..., list[Any]]


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
                result.error("pre-flight analysis", f"the analyzer found errors: {message}", handle.elapsed)
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
                elif isinstance(action, Exec):
                    self._since = cluster_time(self.cluster)
                    self._check(step, timeout, lambda: self._exec(action, timeout), result, handle)
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

    def _logs(self, action: Logs, since: str) -> Observed:
        source = ["-l", action.selector] if action.selector else [action.pod or ""]
        read = self.cluster.kubectl(
            "logs",
            "-n",
            action.namespace,
            *source,
            "-c",
            action.container,
            f"--since-time={since}",
            "--tail=-1",
            check=False,
            timeout=60,
        )
        if not read.ok:
            raise LabError(f"kubectl logs failed: {(read.stderr or read.stdout).strip()[-200:]}")
        return Observed(read.stdout)

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
                self.progress.warn("saved as a pending cleanup: the next scenario or `invoke reset` finishes it")
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


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
