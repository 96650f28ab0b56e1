"""`LabSim`: AWS (moto) plus four SSH-reachable nodes on loopback, for tests and by hand."""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from . import log
from .aws import MotoServer
from .cluster import Cluster
from .config import EGRESS_MODES, PRIMARY_STACK, Delays, Faults, Layout, SimConfig, parse_sshd_late
from .nodes import SSHD, Watcher

# Variables that would send boto3 somewhere else than the simulator's credentials.
UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


# What the simulator runs on this machine, and the Debian/Ubuntu package that provides it: sshd
# and ssh-keygen for the nodes; tar and base64 are what the toolkit's own commands use on a node
# (the Istio release tarball, `invoke kubectl -f` uploads), found on the nodes' PATH.
REQUIRED = (
    (SSHD, "openssh-server"),
    ("ssh-keygen", "openssh-client"),
    ("tar", "tar"),
    ("base64", "coreutils"),
)
NODE_PATH = "/usr/bin:/bin"


class MissingTool(RuntimeError):
    """Something the simulator runs is not installed: one line naming the package."""


def check_requirements() -> None:
    missing = [(tool, package) for tool, package in REQUIRED if not _installed(tool)]
    if missing:
        tools = ", ".join(tool for tool, _ in missing)
        packages = " ".join(dict.fromkeys(package for _, package in missing))
        raise MissingTool(f"the lab simulator needs {tools}: install {packages} (apt-get install {packages})")


def _installed(tool: str) -> bool:
    if os.path.isabs(tool):
        return os.access(tool, os.X_OK)
    return shutil.which(tool, path=f"{NODE_PATH}:{os.environ.get('PATH', '')}") is not None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _late(spec: Mapping[str, float] | Iterable[str] | str | None) -> dict[str, float]:
    if not spec:
        return {}
    if isinstance(spec, Mapping):
        return {node: float(seconds) for node, seconds in spec.items()}
    return dict(parse_sshd_late(s) for s in ([spec] if isinstance(spec, str) else spec))


class LabSim:
    """Start with `with LabSim(...) as sim:`; `sim.env` is what the CLI needs in its environment.

    Only one runs per process at a time: moto keeps its state in process-wide backends.
    """

    _running: LabSim | None = None

    def __init__(
        self,
        workdir: Path | str | None = None,
        *,
        egress: str = "gateway",
        region: str = "ap-northeast-2",
        lab_home: Path | str | None = None,
        ssh_timeout: float | None = None,
        ready_timeout: float | None = None,
        boot_delay: float = 0.3,
        cloud_init_delay: float = 0.5,
        node_ready_delay: float = 0.5,
        istio_ready_delay: float = 0.5,
        pod_ready_delay: float = 0.3,
        image_pull_delay: float = 0.0,
        sshd_late: Mapping[str, float] | Iterable[str] | str | None = None,
        sshd_restart_on: str | None = None,
        cloud_init_fail: Iterable[str] | str | None = None,
        cloud_init_fault: str = "always",
        cloud_init_degraded: Iterable[str] | str | None = None,
        pull_rate_limited: Iterable[str] | str | None = None,
        kubectl_transient: int = 0,
        istiod_never_ready: bool = False,
        istioctl_readiness_timeout: float = 5.0,
        egress_file: Path | str | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if egress not in EGRESS_MODES:
            raise ValueError(f"egress must be one of {', '.join(EGRESS_MODES)}, not {egress!r}")
        self._own_workdir = workdir is None
        # absolute: the nodes' sessions start in another directory
        root = Path(workdir).resolve() if workdir else Path(tempfile.mkdtemp(prefix="labsim-"))
        self.layout = Layout(root)
        self.region = region
        self.lab_home = Path(lab_home).resolve() if lab_home else root / "labhome"
        self.timeouts = {"LAB_SSH_TIMEOUT": ssh_timeout, "LAB_READY_TIMEOUT": ready_timeout}
        failing = [cloud_init_fail] if isinstance(cloud_init_fail, str) else cloud_init_fail
        self.config = SimConfig(
            egress=egress,
            delays=Delays(
                boot_delay,
                cloud_init_delay,
                node_ready_delay,
                istio_ready_delay,
                pod_ready_delay,
                image_pull_delay,
            ),
            faults=Faults(
                _late(sshd_late),
                sshd_restart_on,
                list(failing or []),
                cloud_init_fault,
                kubectl_transient,
                istiod_never_ready,
                cloud_init_degraded=[cloud_init_degraded]
                if isinstance(cloud_init_degraded, str)
                else list(cloud_init_degraded or []),
                pull_rate_limited=[pull_rate_limited]
                if isinstance(pull_rate_limited, str)
                else list(pull_rate_limited or []),
            ),
            istioctl_readiness_timeout=istioctl_readiness_timeout,
        )
        if egress_file:
            self.config.egress_file = str(Path(egress_file).resolve())
        self.on_event = on_event
        self.moto = MotoServer(region)
        self.watcher: Watcher | None = None
        self.ssh_port = _free_port()
        self.ssh_user = pwd.getpwuid(os.getuid()).pw_name  # who sshd can log in
        self.env: dict[str, str] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LabSim:
        if LabSim._running is not None:
            raise RuntimeError("another LabSim is running in this process; stop it first")
        check_requirements()  # before any process starts, so that nothing says "ready" in vain
        LabSim._running = self
        try:
            for folder in (self.layout.root, self.layout.nodes_dir, self.layout.requests_dir, self.lab_home):
                folder.mkdir(parents=True, exist_ok=True)
            self.layout.config_file.write_text(self.config.to_json())
            self.layout.log_file.touch()
            self.moto.start()
            self.watcher = Watcher(
                self.layout, self.config, self.moto.client("ec2"), self.ssh_port, self.ssh_user, self.on_event
            )
            self.watcher.start()
        except BaseException:
            self.stop()
            raise
        self.env = {
            "AWS_ENDPOINT_URL": self.moto.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "LAB_SSH_PORT": str(self.ssh_port),
            "LAB_SSH_USER": self.ssh_user,
            "LAB_SSH_CIDR": "127.0.0.1/32",
            "LAB_HOME": str(self.lab_home),
            "LABSIM_LOG": str(self.layout.log_file),
        }
        self.env.update({k: f"{v:g}" for k, v in self.timeouts.items() if v is not None})
        return self

    def stop(self) -> None:
        """Stop every sshd and its sessions, then moto. Safe to call twice."""
        try:
            if self.watcher is not None:
                self.watcher.shutdown()
                self.watcher = None
            self.moto.stop()
        finally:
            if LabSim._running is self:
                LabSim._running = None
        if self._own_workdir:
            shutil.rmtree(self.layout.root, ignore_errors=True)

    def __enter__(self) -> LabSim:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- for tests -----------------------------------------------------------------------------
    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default os.environ) with the simulator's variables, for subprocesses."""
        merged = {k: v for k, v in (os.environ if base is None else base).items() if k not in UNSET}
        return {**merged, **self.env}

    def exports(self) -> str:
        return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in self.env.items())

    def lab(self, stack: str | None = None) -> Layout:
        """Where a lab stack's nodes and cluster live: the workdir for `lab-egress` (the default
        lab), WORKDIR/labs/<stack> for any other, from the moment its instances are seen."""
        if not stack or stack == PRIMARY_STACK:
            return self.layout
        return Layout(self.layout.root / "labs" / stack)

    def commands(
        self, tool: str | None = None, node: str | None = None, stack: str | None = None
    ) -> list[dict]:
        """The command log, oldest first, optionally only one tool's or one node's (of one lab)."""
        file = self.lab(stack).log_file
        if not file.exists():
            return []
        return [
            entry
            for entry in log.read(file)
            if tool in (None, entry["tool"]) and node in (None, entry["node"])
        ]

    def state(self, stack: str | None = None) -> dict:
        """The cluster as the simulated API server holds it (objects rendered with status)."""
        state = Cluster(self.lab(stack), self.config).read()
        return {
            "objects": [state.render(o) for o in state.objects()] + state.nodes(),
            "istio": state.data.get("istio"),
            "logs": state.data["logs"],
        }

    def objects(self, kind: str, namespace: str | None = None, stack: str | None = None) -> list[dict]:
        return [
            o
            for o in self.state(stack)["objects"]
            if o["kind"] == kind and namespace in (None, o["metadata"].get("namespace"))
        ]

    def address(self, node: str, stack: str | None = None) -> str | None:
        """The node's public address once its sshd listens, else None."""
        return self.watcher.listening(node, stack) if self.watcher else None

    def wait_for_sshd(self, node: str, timeout: float = 10.0, stack: str | None = None) -> str:
        deadline = time.monotonic() + timeout
        while (address := self.address(node, stack)) is None:
            self.check()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{node}: no sshd after {timeout}s")
            time.sleep(0.05)
        return address

    def rotate_host_key(self, node: str, stack: str | None = None) -> None:
        """Give the node a new host key and restart its sshd (the host-key-change fault)."""
        assert self.watcher is not None, "start the simulator first"
        self.watcher.rotate_host_key(node, stack)

    def restart_sshd(self, node: str, stack: str | None = None) -> None:
        """Drop the node's sshd and every session, back 0.3 s later with the same host key (as
        the `sshd_restart_on` fault does, through the same request)."""
        requests = self.lab(stack).requests_dir
        requests.mkdir(parents=True, exist_ok=True)
        (requests / f"restart-{node}").touch()

    def check(self) -> None:
        """Raise if the watcher hit an error (for example an sshd that would not start)."""
        if self.watcher and self.watcher.errors:
            raise RuntimeError("lab simulator error:\n" + self.watcher.errors[-1])
