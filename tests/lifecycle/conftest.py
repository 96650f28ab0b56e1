"""Run the real CLI (`python -m invoke ...`) as a subprocess against the moto server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cfn_helpers import moto_env

REPO = Path(__file__).resolve().parents[2]
Invoke = Callable[..., subprocess.CompletedProcess]


def base_env(lab_home: Path) -> dict[str, str]:
    """A clean environment: no real AWS credentials or config can leak into a test."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LAB_"))}
    return {
        **keep,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "LAB_HOME": str(lab_home),
        "LAB_CONFIG": str(lab_home / "no-lab.yaml"),
        "COLUMNS": "200",
    }


def make_invoke(env: dict[str, str]) -> Invoke:
    def run(
        *args: str, timeout: float = 120, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=REPO,
            env={**env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def lab_home(tmp_path: Path) -> Path:
    return tmp_path / "labhome"


@pytest.fixture
def cli(moto_aws: str, lab_home: Path) -> Invoke:
    """`invoke` pointed at a fresh moto server, with SSH open to loopback only."""
    env = {**base_env(lab_home), **moto_env(moto_aws), "LAB_SSH_CIDR": "127.0.0.1/32"}
    return make_invoke(env)


@pytest.fixture
def offline_cli(lab_home: Path) -> Invoke:
    """`invoke` with no AWS credentials at all and an endpoint nobody listens on."""
    env = {**base_env(lab_home), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    return make_invoke(env)
