"""Settings shared by the simulator's host side and its node tools.

The host side writes them to `labsim.json` in the workdir; every simulated tool reads them back
(tools run in their own processes, started by sshd, so a file is the only channel).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
TOOLS_DIR = PACKAGE_DIR / "tools"
# istioctl is not on the nodes' PATH: only the wrapper inside the release tarball reaches it.
ISTIOCTL = TOOLS_DIR / "istio" / "istioctl"
RELEASE_DIR = PACKAGE_DIR / "release"
EGRESS_FILE = PACKAGE_DIR / "egress.yaml"

SERVER = "k3s-s"
CLUSTER_NODES = ("k3s-s", "k3s-w1", "k3s-w2")
EGRESS_MODES = ("gateway", "passthrough", "blocked")


@dataclass
class Delays:
    """Seconds; each readiness is measured from the previous one, as on a real boot."""

    boot: float = 0.3  # instance running -> sshd up
    cloud_init: float = 0.5  # boot -> `cloud-init status` done
    node_ready: float = 0.5  # cloud-init done -> Kubernetes node Ready
    istio_ready: float = 0.5  # istioctl install -> istiod and gateways Available
    pod_ready: float = 0.3  # pod created, its images on the node -> Ready
    image_pull: float = 0.0  # seconds per 100 MB of (compressed) image pulled on a node


@dataclass
class Faults:
    sshd_late: dict[str, float] = field(default_factory=dict)  # node -> extra seconds
    sshd_restart_on: str | None = None  # substring of a command on k3s-s
    cloud_init_fail: list[str] = field(default_factory=list)  # nodes
    # how those nodes fail: "always" (at boot and on every re-run of the boot script),
    # "transient" (at boot only: a re-run succeeds, as after a download that failed once),
    # "first-instance" (the node's first instance, at boot and on re-runs; a replacement boots)
    cloud_init_fault: str = "always"
    kubectl_transient: int = 0  # first N `kubectl get nodes` are refused
    istiod_never_ready: bool = False
    cloud_init_degraded: list[str] = field(default_factory=list)  # nodes: done, recoverable errors
    pull_rate_limited: list[str] = field(default_factory=list)  # nodes Docker Hub answers 429


@dataclass
class SimConfig:
    egress: str = "gateway"
    egress_file: str = str(EGRESS_FILE)
    delays: Delays = field(default_factory=Delays)
    faults: Faults = field(default_factory=Faults)
    # what `istioctl install` waits for readiness when not told (`--readiness-timeout`); real
    # istioctl waits 5 minutes (istio/istio 1.23.2 operator/cmd/mesh/install.go, default
    # 300*time.Second), which would stall the fault tests.
    istioctl_readiness_timeout: float = 5.0
    python: str = sys.executable

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> SimConfig:
        raw = json.loads(text)
        return cls(
            **{k: v for k, v in raw.items() if k not in ("delays", "faults")},
            delays=Delays(**raw["delays"]),
            faults=Faults(**raw["faults"]),
        )


class Layout:
    """Where things live in the workdir."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @classmethod
    def from_env(cls) -> Layout:
        return cls(os.environ["LABSIM_DIR"])

    config_file = property(lambda self: self.root / "labsim.json")
    log_file = property(lambda self: self.root / "commands.jsonl")
    cluster_file = property(lambda self: self.root / "cluster.json")
    cluster_lock = property(lambda self: self.root / "cluster.lock")
    requests_dir = property(lambda self: self.root / "requests")
    nodes_dir = property(lambda self: self.root / "nodes")

    def node_dir(self, node: str) -> Path:
        return self.nodes_dir / node

    def node_root(self, node: str) -> Path:
        """The node's private `/`, for the few absolute paths the tools map (see `sudo`)."""
        return self.node_dir(node) / "root"

    def node_home(self, node: str) -> Path:
        return self.node_dir(node) / "home"

    def instance_file(self, node: str) -> Path:
        """Written when the node boots, removed when its instance goes away."""
        return self.node_dir(node) / "instance.json"

    def load_config(self) -> SimConfig:
        return SimConfig.from_json(self.config_file.read_text())

    def instance(self, node: str) -> dict | None:
        try:
            return json.loads(self.instance_file(node).read_text())
        except FileNotFoundError:
            return None


# CloudFormation tags every resource it creates with its stack's name (AWS "Resource tagging":
# aws:cloudformation:stack-name); moto does too (moto/cloudformation/parsing.py).
STACK_TAG = "aws:cloudformation:stack-name"
# The default lab's stack (`invoke up` without --name) and untagged instances live in the workdir
# itself; any other stack in WORKDIR/labs/<stack>/, a workdir of its own.
PRIMARY_STACK = "lab-egress"


class Layouts:
    """One Layout per lab stack, each a full cluster: nodes, cluster state, command log."""

    def __init__(self, primary: Layout, config: SimConfig, primary_stack: str = PRIMARY_STACK) -> None:
        self.primary = primary_stack
        self._config = config
        self._layouts = {primary_stack: primary}

    def stack_of(self, tag: str) -> str:
        return tag or self.primary

    def get(self, stack: str) -> Layout:
        if stack not in self._layouts:
            layout = Layout(self._layouts[self.primary].root / "labs" / stack)
            for folder in (layout.root, layout.nodes_dir, layout.requests_dir):
                folder.mkdir(parents=True, exist_ok=True)
            layout.config_file.write_text(self._config.to_json())
            layout.log_file.touch()
            self._layouts[stack] = layout
        return self._layouts[stack]

    def items(self) -> list[tuple[str, Layout]]:
        return list(self._layouts.items())


def parse_sshd_late(spec: str) -> tuple[str, float]:
    """`k3s-w1:2.5` -> ("k3s-w1", 2.5)."""
    node, _, seconds = spec.partition(":")
    if not node or not seconds:
        raise ValueError(f"expected NODE:SECONDS, got {spec!r}")
    return node, float(seconds)
