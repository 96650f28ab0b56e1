"""How much time does `invoke up` add on top of the waits nobody can avoid?

Runs the real CLI against the lab simulator with an AWS-like timeline scaled down, and prints
the wall time, the critical path (the injected delays that are on the longest chain), and their
ratio as the last line. Target: at most 1.15 (no fixed sleeps, tight polling, parallel node waits).

    python bench/up_overhead.py [--scale 0.1] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.labsim.sim import LabSim  # noqa: E402

# Seconds on real AWS with t3.medium nodes (observed orders of magnitude, not targets):
REAL_TIMELINE = {
    "boot_delay": 40.0,  # instance running -> sshd answers
    "cloud_init_delay": 90.0,  # apt update, curl, k3s install
    "node_ready_delay": 15.0,  # kubelet registered -> Ready
    "istio_ready_delay": 60.0,  # istioctl install demo -> istiod and gateways Available
    "pod_ready_delay": 30.0,  # image pull + start: Kiali, then the netshoot pods
}


def critical_path(delays: dict[str, float]) -> float:
    """The chain every `up` must wait through: the nodes boot and run cloud-init in parallel,
    then k3s, Istio, Kiali (one pod start) and netshoot (another) come one after the other."""
    return (
        delays["boot_delay"]
        + delays["cloud_init_delay"]
        + delays["node_ready_delay"]
        + delays["istio_ready_delay"]
        + 2 * delays["pod_ready_delay"]
    )


def run_once(delays: dict[str, float]) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-up-") as workdir, LabSim(workdir, **delays) as sim:
        env = sim.environ()
        env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull)
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "invoke", "up"], cwd=REPO, env=env, capture_output=True, text=True
        )
        wall = time.monotonic() - started
        if result.returncode != 0:
            sys.exit(f"up failed:\n{result.stdout}\n{result.stderr}")
        return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="time scale of the real timeline")
    parser.add_argument("--runs", type=int, default=3, help="the median run is reported")
    options = parser.parse_args()
    delays = {name: seconds * options.scale for name, seconds in REAL_TIMELINE.items()}
    critical = critical_path(delays)
    walls = [run_once(delays) for _ in range(options.runs)]
    wall = statistics.median(walls)
    print("injected delays (s): " + ", ".join(f"{k}={v:g}" for k, v in delays.items()))
    print(f"runs: {', '.join(f'{w:.2f}' for w in walls)}")
    print(f"median wall time {wall:.2f} s, critical path {critical:.2f} s, overhead {wall - critical:.2f} s")
    print(f"ratio {wall / critical:.3f}")


if __name__ == "__main__":
    main()
