"""How close does `invoke up` come to the fastest the lab's own dependencies allow?

Runs the real CLI against the lab simulator with an AWS-like timeline scaled down, and compares
the median wall time with the critical path of the lab's dependency graph: the longest chain of
injected delays through work that really depends on other work. Also prints the old figure (the
strictly sequential chain the previous version of this benchmark used) and how long a second
`up` on the ready lab takes, as a share of the first.

    python bench/up_overhead.py [--scale 0.1] [--runs 3]

Targets: last line (median wall / critical path) at most 1.10 at the default scale; second `up`
at most 0.10 of the first.
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

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.labsim.config import RELEASE_DIR  # noqa: E402
from tests.labsim.sim import LabSim  # noqa: E402
from tests.labsim.workloads import IMAGE_SIZES_MB, UNKNOWN_IMAGE_MB, normalize_image  # noqa: E402

# Seconds on real AWS with t3.medium nodes (observed orders of magnitude, not targets):
REAL_TIMELINE = {
    "boot_delay": 40.0,  # instance running -> sshd answers
    "cloud_init_delay": 90.0,  # apt update, curl, k3s install
    "node_ready_delay": 15.0,  # kubelet registered -> Ready
    "istio_ready_delay": 60.0,  # istioctl install demo -> istiod and gateways Available
    "pod_ready_delay": 5.0,  # a pod's containers start -> Ready, its images on the node
    "image_pull_delay": 10.0,  # seconds per 100 MB of compressed image pulled (and unpacked) on a node
}
NETSHOOT_IMAGES = ("nicolaka/netshoot:v0.13", "docker.io/istio/proxyv2:1.23.2")
ADDONS = ("kiali", "prometheus", "grafana", "jaeger")
TARGET, SECOND_UP_TARGET = 1.10, 0.10


def pull(image: str, delays: dict[str, float]) -> float:
    name = normalize_image(image).rsplit(":", 1)[0]
    return IMAGE_SIZES_MB.get(name, UNKNOWN_IMAGE_MB) / 100 * delays["image_pull_delay"]


def addon_images(name: str) -> list[str]:
    """The images of an add-on's Deployment, from the simulator's copy of the release."""
    docs = yaml.safe_load_all((RELEASE_DIR / "samples" / "addons" / f"{name}.yaml").read_text())
    spec = next(d for d in docs if d and d.get("kind") == "Deployment")["spec"]["template"]["spec"]
    return [c["image"] for c in spec.get("initContainers", []) + spec["containers"]]


def dependency_graph(delays: dict[str, float]) -> dict[str, tuple[float, tuple[str, ...]]]:
    """work -> (its own injected seconds, the work it needs finished first).

    The nodes boot, then run cloud-init, side by side; Kubernetes nodes become Ready after
    cloud-init; istioctl's download needs only SSH to k3s-s (0 s in the simulator); Istio needs
    the nodes Ready and istioctl; the netshoot pods need istiod (sidecar injection) and their two
    images on the node, which can be pulled once the node runs k3s; each add-on needs only the
    istio-system namespace (made at the start of Istio's install) and its own images. Images pull
    side by side, as the simulator models them.
    """
    graph: dict[str, tuple[float, tuple[str, ...]]] = {
        "boot": (delays["boot_delay"], ()),
        "cloud-init": (delays["cloud_init_delay"], ("boot",)),
        "nodes Ready": (delays["node_ready_delay"], ("cloud-init",)),
        "istioctl download": (0.0, ("boot",)),
        "istio-system namespace": (0.0, ("nodes Ready", "istioctl download")),
        "Istio ready": (delays["istio_ready_delay"], ("istio-system namespace",)),
        "netshoot images": (max(pull(i, delays) for i in NETSHOOT_IMAGES), ("nodes Ready",)),
        "netshoot pods Ready": (delays["pod_ready_delay"], ("Istio ready", "netshoot images")),
    }
    for name in ADDONS:
        graph[f"{name} images"] = (
            max(pull(i, delays) for i in addon_images(name)),
            ("istio-system namespace",),
        )
        graph[f"{name} Ready"] = (delays["pod_ready_delay"], (f"{name} images",))
    return graph


def critical_path(graph: dict[str, tuple[float, tuple[str, ...]]]) -> tuple[float, list[str]]:
    """The longest chain through the graph: its length and the work on it."""
    finish: dict[str, tuple[float, list[str]]] = {}

    def done_at(work: str) -> tuple[float, list[str]]:
        if work not in finish:
            seconds, needs = graph[work]
            start, chain = max((done_at(n) for n in needs), default=(0.0, []), key=lambda f: f[0])
            finish[work] = (start + seconds, [*chain, work])
        return finish[work]

    return max((done_at(w) for w in graph), key=lambda f: f[0])


def sequential_chain(delays: dict[str, float]) -> float:
    """The previous benchmark's figure: boot, cloud-init, nodes Ready, Istio, then Kiali's pod
    and the netshoot pods one after the other (each with its image pull)."""
    kiali = max(pull(i, delays) for i in addon_images("kiali")) + delays["pod_ready_delay"]
    netshoot = max(pull(i, delays) for i in NETSHOOT_IMAGES) + delays["pod_ready_delay"]
    return (
        delays["boot_delay"]
        + delays["cloud_init_delay"]
        + delays["node_ready_delay"]
        + delays["istio_ready_delay"]
        + kiali
        + netshoot
    )


def invoke_up(env: dict[str, str]) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "up"], cwd=REPO, env=env, capture_output=True, text=True
    )
    wall = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"up failed:\n{result.stdout}\n{result.stderr}")
    return wall


def run_once(delays: dict[str, float]) -> tuple[float, float]:
    """(first `up`, second `up` on the lab the first one made)."""
    with tempfile.TemporaryDirectory(prefix="bench-up-") as workdir, LabSim(workdir, **delays) as sim:
        env = sim.environ()
        env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull)
        return invoke_up(env), invoke_up(env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="time scale of the real timeline")
    parser.add_argument("--runs", type=int, default=3, help="the median run is reported")
    options = parser.parse_args()
    delays = {name: seconds * options.scale for name, seconds in REAL_TIMELINE.items()}
    critical, chain = critical_path(dependency_graph(delays))
    old = sequential_chain(delays)
    runs = [run_once(delays) for _ in range(options.runs)]
    first = statistics.median(r[0] for r in runs)
    second = statistics.median(r[1] for r in runs)
    print("injected delays (s): " + ", ".join(f"{k}={v:g}" for k, v in delays.items()))
    print(f"critical path of the dependency graph: {critical:.2f} s ({' -> '.join(chain)})")
    print(f"old figure (the strictly sequential chain): {old:.2f} s; median wall / old = {first / old:.3f}")
    print(f"first up: {', '.join(f'{r[0]:.2f}' for r in runs)} s; median {first:.2f} s")
    print(f"second up: {', '.join(f'{r[1]:.2f}' for r in runs)} s; median {second:.2f} s")
    print(f"second up / first up: {second / first:.3f} (target <= {SECOND_UP_TARGET:.2f})")
    print(f"overhead over the critical path: {first - critical:.2f} s")
    print(f"ratio {first / critical:.3f} (median wall / critical path, target <= {TARGET:.2f})")


if __name__ == "__main__":
    main()
