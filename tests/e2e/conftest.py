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

    Reads the pipe's file descriptor itself: a buffered `readline` can pull several lines in at
    once, and `select` then waits on a pipe whose next lines are already in Python's buffer.
    """
    import os
    import selectors
    import time

    assert process.stdout is not None
    fd = process.stdout.fileno()
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not selector.select(timeout=deadline - time.monotonic()):
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
            for line in seen.decode(errors="replace").splitlines(keepends=True):
                if text in line and line.endswith("\n"):
                    return line
    raise AssertionError(f"no line with {text!r} within {timeout}s; got:\n{seen.decode(errors='replace')}")
