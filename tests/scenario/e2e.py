"""Helpers for the end-to-end scenario tests: a simulated lab after one real `invoke up`, the real
CLI as a subprocess, and what the simulator recorded (commands, cluster objects)."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.labsim import LabSim
from tests.lifecycle.conftest import base_env
from tests.scenario.fakes import ISTIO_KINDS

REPO = Path(__file__).resolve().parents[2]
# A failing step retries until its timeout: keep that short in tests.
STEP_TIMEOUT = "3"
# How "run every scenario" is spelled on the command line (tasks.py decides; invoke has no
# optional positional arguments, so keep this in step with the `scenario` task).
RUN_ALL = ("scenario", "--all")


@contextmanager
def ready_lab(workdir: Path, egress: str) -> Iterator[LabSim]:
    with LabSim(workdir, egress=egress) as sim:
        up = invoke(sim, "up", timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        yield sim


def environment(sim: LabSim, **extra: str) -> dict[str, str]:
    """No real AWS settings or LAB_* of the developer's shell: only the simulator's."""
    return {**sim.environ(base_env(sim.lab_home)), **sim.env, "LAB_STEP_TIMEOUT": STEP_TIMEOUT, **extra}


def invoke(sim: LabSim, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
    environ = environment(sim, **env)
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(sim: LabSim, *args: str, **env: str) -> subprocess.Popen[str]:
    environ = environment(sim, **env)
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kubectl_calls(sim: LabSim, since: int = 0) -> list[list[str]]:
    """argv (without `kubectl`) of every kubectl the simulated k3s-s ran, from entry `since` on."""
    return [entry["argv"][1:] for entry in sim.commands("kubectl")[since:]]


def verbs(calls: list[list[str]]) -> list[str]:
    """apply / exec / logs / delete in order, each run of repeats collapsed to one."""
    wanted = [c[0] for c in calls if c[0] in ("apply", "exec", "logs", "delete")]
    return [v for i, v in enumerate(wanted) if i == 0 or wanted[i - 1] != v]


def snapshot(sim: LabSim) -> dict[str, Any]:
    """What a scenario must leave as it found it, as the simulated API server holds it."""
    objects = sim.state()["objects"]

    def plain(obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        obj.pop("status", None)
        for field in ("resourceVersion", "generation", "managedFields"):
            obj["metadata"].pop(field, None)
        return obj

    return {
        "namespaces": sorted(o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"),
        "istio": sorted(
            f"{o['kind']} {o['metadata']['namespace']}/{o['metadata']['name']}"
            for o in objects
            if o["kind"] in ISTIO_KINDS
        ),
        "mesh": next(
            o["data"]["mesh"]
            for o in objects
            if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "istio"
        ),
        "gateway": [
            plain(o)
            for o in objects
            if o["kind"] in ("Service", "Deployment") and o["metadata"]["name"] == "istio-egressgateway"
        ],
    }
