"""pytest fixtures for the lab simulator. In tests/conftest.py:

from tests.labsim.fixtures import labsim, labsim_factory  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .sim import LabSim


@pytest.fixture
def labsim_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LabSim]]:
    """`labsim_factory(egress="passthrough", cloud_init_fail="k3s-w2", ...)` -> a started
    LabSim in its own temporary workdir, stopped after the test (one at a time)."""
    started: list[LabSim] = []

    def make(**options: object) -> LabSim:
        options.setdefault("workdir", tmp_path_factory.mktemp("labsim"))
        sim = LabSim(**options).start()  # type: ignore[arg-type]
        started.append(sim)
        return sim

    yield make
    for sim in reversed(started):
        sim.stop()


@pytest.fixture
def labsim(labsim_factory: Callable[..., LabSim]) -> LabSim:
    """A started LabSim with the default (short) delays, egress `gateway`, no faults."""
    return labsim_factory()
