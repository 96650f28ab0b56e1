"""Shared fixtures: an in-process moto server standing in for AWS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cfn_helpers import moto_server, reset_moto, seed_ubuntu_ami


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the whole run; use `moto_aws` for a clean slate."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def moto_aws(moto_endpoint: str) -> str:
    """A reset moto server whose Canonical Ubuntu AMI parameter resolves; its endpoint URL."""
    reset_moto(moto_endpoint)
    seed_ubuntu_ami(moto_endpoint)
    return moto_endpoint


# The lab simulator's fixtures (`labsim`, `labsim_factory`), for every test folder.
from tests.labsim.fixtures import labsim, labsim_factory  # noqa: E402, F401
