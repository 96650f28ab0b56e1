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
from lab.nodes import Node
from lab.progress import Progress
from lab.scenario.engine import Engine, Interrupts
from lab.scenario.junit import write_junit
from lab.scenario.model import (
    FORMAT_HINT,
    Broken,
    Scenario,
    broken_of,
    load_catalog,
    load_scenario_file,
    looks_like_path,
    select,
)
from lab.scenario.results import ScenarioResult
from lab.scenario.starter import new_scenario

INTERRUPTED = 130
# Caps every step's timeout (seconds): for quick rehearsals, and for tests that expect a failure.
STEP_TIMEOUT_VARIABLE = "LAB_STEP_TIMEOUT"


def run_list(settings: Settings) -> int:
    """The scenarios and their titles; a file that does not load is listed with its error."""
    progress = Progress()
    catalog = load_catalog()
    broken = broken_of(catalog)
    width = max((len(s.name) for s in [*catalog, *broken]), default=0)
    for scenario in catalog:
        progress.info(f"{scenario.name:<{width}}  {escape(scenario.title)}")
    for failed in broken:
        progress.info(f"{failed.name:<{width}}  [red]broken:[/] {escape(failed.error.message)}")
    if broken:
        progress.info(f"{len(broken)} broken: the others run as usual; {FORMAT_HINT}")
    return 0


def run_new(name: str, source: str | None) -> int:
    path = new_scenario(name, source, Path.cwd())
    progress = Progress()
    progress.info(f"Wrote {path.name} and its manifests in {path.stem}/ ({FORMAT_HINT}).")
    progress.info(f"Run it with: invoke scenario ./{path.name}")
    return 0


def run_scenarios(settings: Settings, names: list[str], run_all: bool, keep: bool, junit: str | None) -> int:
    if junit:
        check_writable(Path(junit))
    paths = [Path(n) for n in names if looks_like_path(n)]
    names = [n for n in names if not looks_like_path(n)]
    if paths and run_all:
        raise UsageError("give scenario files or --all, not both", "run them one after the other")
    catalog = load_catalog()
    broken = broken_of(catalog) if run_all else []
    scenarios = select(catalog, names, run_all) if names or not paths else []
    scenarios += [load_scenario_file(p) for p in paths]
    with lock.hold(settings.lab_dir, "scenario"):  # one command at a time on a lab
        return _run(settings, scenarios, keep, junit, broken)


def _run(
    settings: Settings, scenarios: list[Scenario], keep: bool, junit: str | None, broken: list[Broken]
) -> int:
    from lab.cluster import Cluster  # late: listing and name errors need no lab
    from lab.lab import Lab

    progress = Progress()
    interrupts = Interrupts()
    cluster = Cluster.for_lab(settings)
    hosts: dict[str, Node] = {}

    def host(name: str) -> Node:  # opened on first use: most scenarios read no host's files
        return hosts.setdefault(name, Lab.load(settings).node(name))

    engine = Engine(
        cluster,
        progress,
        settings.lab_dir,
        interrupts=interrupts,
        step_timeout_cap=_step_timeout_cap(),
        hosts=host,
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
    if broken:
        progress.warn(f"not run, broken: {', '.join(str(b.path) for b in broken)} (see `invoke scenarios`)")
        return 1
    return 0 if results and all(r.passed for r in results) else 1


def check_writable(path: Path) -> None:
    """Refuse a report path that cannot be written before any work, not after the run."""
    if path.is_dir():
        raise UsageError(
            f"--junit {path} is a folder", f"pass a file name, e.g. --junit {path / 'junit.xml'}"
        )
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UsageError(f"--junit {path}: {folder} is not a folder", "pass a path in a folder you can write")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--junit {path} is not writable", "pass a path in a folder you can write")


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
