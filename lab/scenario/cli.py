"""Entry points that tasks.py wires as `invoke scenarios` and `invoke scenario`.

Exit codes: 0 when every assertion passed, 1 when one failed (or cleanup / the leak check did),
130 when interrupted with Ctrl-C (after cleaning up).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from rich.markup import escape

from lab import lock
from lab.config import Settings
from lab.errors import UsageError
from lab.progress import Progress
from lab.scenario.engine import Engine, Interrupts
from lab.scenario.junit import write_junit
from lab.scenario.model import Scenario, load_catalog, select
from lab.scenario.results import ScenarioResult

INTERRUPTED = 130
# Caps every step's timeout (seconds): for quick rehearsals, and for tests that expect a failure.
STEP_TIMEOUT_VARIABLE = "LAB_STEP_TIMEOUT"


def run_list(settings: Settings) -> int:
    progress = Progress()
    catalog = load_catalog()
    width = max(len(s.name) for s in catalog)
    for scenario in catalog:
        progress.info(f"{scenario.name:<{width}}  {escape(scenario.title)}")
    return 0


def run_scenarios(settings: Settings, names: list[str], run_all: bool, keep: bool, junit: str | None) -> int:
    scenarios = select(load_catalog(), list(names), run_all)
    with lock.hold(settings.lab_dir, "scenario"):  # one command at a time on a lab
        return _run(settings, scenarios, keep, junit)


def _run(settings: Settings, scenarios: list[Scenario], keep: bool, junit: str | None) -> int:
    from lab.cluster import Cluster  # late: listing and name errors need no lab

    progress = Progress()
    interrupts = Interrupts()
    engine = Engine(
        Cluster.for_lab(settings),
        progress,
        settings.lab_dir,
        interrupts=interrupts,
        step_timeout_cap=_step_timeout_cap(),
    )
    results: list[ScenarioResult] = []
    with _counting_sigint(interrupts, progress):
        for scenario in scenarios:
            results.append(engine.run(scenario, keep=keep))
            if results[-1].interrupted or results[-1].bug:
                break
    if junit:
        write_junit(results, Path(junit))
        progress.info(f"JUnit report: {junit}")
    if len(results) > 1:
        passed = sum(r.passed for r in results)
        progress.info(f"{passed} of {len(results)} scenarios passed")
    bug = next((r.bug for r in results if r.bug), None)
    if bug is not None:
        raise bug  # after cleanup and the reports: `lab.cli.run` prints one line (--debug: the traceback)
    if any(r.interrupted for r in results):
        return INTERRUPTED
    return 0 if results and all(r.passed for r in results) else 1


def _step_timeout_cap() -> float | None:
    value = os.environ.get(STEP_TIMEOUT_VARIABLE)
    if not value:
        return None
    try:
        cap = float(value)
    except ValueError:
        cap = 0.0
    if cap <= 0:
        raise UsageError(
            f"{STEP_TIMEOUT_VARIABLE}={value!r} is not a positive number of seconds", "unset it or fix it"
        )
    return cap


@contextmanager
def _counting_sigint(interrupts: Interrupts, progress: Progress) -> Iterator[None]:
    """Count Ctrl-C instead of raising at a random point: the engine stops at the next cluster call."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        held = lock.current()
        if held is not None and held.deleting:  # sent by the lock's watcher: the cluster is going away
            interrupts.count = max(interrupts.count + 1, 2)
            progress.warn("`invoke down` is deleting this lab: stopping now, without cleaning up")
            return
        interrupts.count += 1
        if interrupts.count == 1:
            progress.warn("Ctrl-C: stopping after the current command, then cleaning up")
        elif interrupts.count == 2:
            progress.warn("Ctrl-C again: abandoning the cleanup after the current command")

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
