"""The lab simulator: AWS (a moto server) and the lab's four nodes (real sshd's on loopback
addresses, with simulated kubectl, istioctl, cloud-init, curl, sudo and journalctl), so that
`invoke up`, `invoke scenario ...` and `invoke down` run for real on one machine.

It never imports `lab`: it records every command it receives and answers as configured.
`from tests.labsim import LabSim` for tests; `python -m tests.labsim serve` by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sim import LabSim

__all__ = ["LabSim"]


def __getattr__(name: str) -> Any:
    # lazy, so that the simulated tools (which load this package) never import moto or boto3
    if name == "LabSim":
        from .sim import LabSim

        return LabSim
    raise AttributeError(name)
