"""End-to-end: the real CLI, as a subprocess, against the lab simulator (moto + sshd + tools)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.labsim.sim import LabSim
from tests.lifecycle.conftest import REPO  # noqa: F401 - re-exported for the tests here
from tests.scenario.e2e import invoke

Cli = Callable[..., subprocess.CompletedProcess]


def cli_for(sim: LabSim, **extra: str) -> Cli:
    """The real CLI as a subprocess, with only the simulator's environment (see tests/scenario/e2e.py)."""

    def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return invoke(sim, *args, timeout=timeout, **extra)

    return run


def lab_dir(sim: LabSim, name: str = "egress") -> Path:
    return sim.lab_home / name


@pytest.fixture
def sim_cli(labsim: LabSim) -> Cli:
    return cli_for(labsim)


def read_until(process: subprocess.Popen, text: str, timeout: float = 60) -> str:
    """Read the process's stdout until a line contains `text`; fail (not hang) at the deadline.

    A thread reads lines from the file object itself: waiting on the pipe with select() between
    readline() calls misses lines already in the file's buffer (two lines written together)."""
    import queue
    import threading

    assert process.stdout is not None
    stdout = process.stdout
    seen: list[str] = []
    found: queue.Queue[str | None] = queue.Queue()

    def reader() -> None:
        for line in iter(stdout.readline, ""):
            seen.append(line)
            if text in line:
                found.put(line)
                return
        found.put(None)

    threading.Thread(target=reader, daemon=True).start()
    try:
        line = found.get(timeout=timeout)
    except queue.Empty:
        line = None
    if line is not None:
        return line
    raise AssertionError(f"no line with {text!r} within {timeout}s; got:\n{''.join(seen)}")
