"""End-to-end: the real CLI, as a subprocess, against the lab simulator (moto + sshd + tools)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from cfn_helpers import remove_route_tables

from tests.labsim.sim import LabSim
from tests.lifecycle.conftest import REPO  # noqa: F401 - re-exported for the tests here
from tests.scenario.e2e import invoke

Cli = Callable[..., subprocess.CompletedProcess]


def cli_for(sim: LabSim, **extra: str) -> Cli:
    """The real CLI as a subprocess, with only the simulator's environment (see tests/scenario/e2e.py)."""

    def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return invoke(sim, *args, timeout=timeout, **extra)

    return run


def drop_route_tables(sim: LabSim) -> None:
    """moto cannot delete route tables through CloudFormation; remove them as a test fixture may."""
    kw = {"endpoint_url": sim.env["AWS_ENDPOINT_URL"], "region_name": sim.region}
    kw |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    ec2 = boto3.client("ec2", **kw)
    for vpc in ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["192.168.0.0/16"]}])["Vpcs"]:
        remove_route_tables(ec2, vpc["VpcId"])


def lab_dir(sim: LabSim, name: str = "egress") -> Path:
    return sim.lab_home / name


@pytest.fixture
def sim_cli(labsim: LabSim) -> Cli:
    return cli_for(labsim)
