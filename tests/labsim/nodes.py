"""The nodes: a watcher that boots each EC2 instance moto runs into a real OpenSSH sshd.

Each instance with a Name tag and a public address in 127.0.0.0/8 (moto's Elastic IPs) gets,
after the boot delay, its own sshd bound to that address, its own host key, the public key of
the instance's EC2 key pair as authorized key (as cloud-init does on EC2), and an environment
that puts the simulated tools first on PATH.

Several labs side by side: instances are told apart by the `aws:cloudformation:stack-name` tag
CloudFormation puts on every resource it creates (moto does the same, cloudformation/parsing.py).
Each stack is its own cluster with its own folder (see `Layouts`), as each lab has its own k3s.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import STACK_TAG, TOOLS_DIR, Layout, Layouts, SimConfig
from .node_tools import DEFAULT_K3S, failed_at_boot, instances_file, write_boot_files, write_boot_script

# LABSIM_SSHD: another sshd binary (and the way the tests show what happens without one).
SSHD = os.environ.get("LABSIM_SSHD", "/usr/sbin/sshd")
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
POLL_AWS = 0.15  # seconds between looks at moto
TICK = 0.05
RESTART_GAP = 0.3  # a restarted sshd comes back after this long


@dataclass
class Node:
    stack: str
    layout: Layout
    name: str
    instance_id: str
    public_ip: str
    private_ip: str
    key_name: str | None
    boot_at: float
    sshd_at: float
    booted: bool = False
    process: subprocess.Popen | None = None


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (sshd's per-connection children, their shells and tools)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Watcher(threading.Thread):
    def __init__(
        self,
        layout: Layout,
        config: SimConfig,
        ec2,
        ssh_port: int,
        ssh_user: str,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(name="labsim-watcher", daemon=True)
        self.layout, self.config, self.ec2 = layout, config, ec2
        self.ssh_port, self.ssh_user = ssh_port, ssh_user
        self.on_event = on_event or (lambda _message: None)
        self.nodes: dict[tuple[str, str], Node] = {}  # (stack, node name)
        self.layouts = Layouts(layout, config)
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self.errors: list[str] = []

    # -- loop ----------------------------------------------------------------------------------
    def run(self) -> None:
        last_poll = 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() - last_poll >= POLL_AWS:
                    last_poll = time.monotonic()
                    self._poll()
                with self.lock:
                    self._tick()
                    self._serve_requests()
            except Exception:  # keep watching; the error is kept for the report
                if not self.stopping.is_set():
                    self.errors.append(traceback.format_exc())
                    with open(self.layout.root / "labsim.log", "a") as log:
                        log.write(self.errors[-1])
            self.stopping.wait(TICK)

    def _poll(self) -> None:
        reply = self.ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])
        running: dict[tuple[str, str], dict] = {}
        for reservation in reply["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                address = instance.get("PublicIpAddress")
                if tags.get("Name") and address and ipaddress.ip_address(address) in LOOPBACK:
                    stack = self.layouts.stack_of(tags.get(STACK_TAG, ""))
                    running.setdefault((stack, tags["Name"]), instance)
        with self.lock:
            for key, node in list(self.nodes.items()):
                if running.get(key, {}).get("InstanceId") != node.instance_id:
                    self._stop_sshd(node)
                    node.layout.instance_file(node.name).unlink(missing_ok=True)
                    del self.nodes[key]
                    self.on_event(f"{self._label(node)}: instance {node.instance_id} gone, sshd stopped")
            for key, instance in running.items():
                if key not in self.nodes:
                    stack, name = key
                    boot_at = time.time() + self.config.delays.boot
                    late = (
                        self.config.faults.sshd_late.get(name, 0.0) if stack == self.layouts.primary else 0.0
                    )
                    self.nodes[key] = Node(
                        stack,
                        self.layouts.get(stack),
                        name,
                        instance["InstanceId"],
                        instance["PublicIpAddress"],
                        instance.get("PrivateIpAddress", ""),
                        instance.get("KeyName"),
                        boot_at,
                        boot_at + late,
                    )

    def _tick(self) -> None:
        now = time.time()
        for node in self.nodes.values():
            if not node.booted and now >= node.boot_at:
                self._boot(node)
            if node.booted and node.process is None and node.sshd_at and now >= node.sshd_at:
                self._start_sshd(node)

    def _serve_requests(self) -> None:
        """Fault `sshd_restart_on`: a tool asked for its node's sshd to drop and come back."""
        for stack, layout in self.layouts.items():
            if not layout.requests_dir.exists():
                continue
            for request in layout.requests_dir.glob("restart-*"):
                request.unlink()
                node = self.nodes.get((stack, request.name.removeprefix("restart-")))
                if node is None:
                    continue
                self._stop_sshd(node)
                node.sshd_at = time.time() + RESTART_GAP
                self.on_event(f"{self._label(node)}: sshd restarted (fault sshd_restart_on)")

    # -- boot ----------------------------------------------------------------------------------
    def _label(self, node: Node) -> str:
        return node.name if node.stack == self.layouts.primary else f"{node.stack}/{node.name}"

    def _boot(self, node: Node) -> None:
        layout = node.layout
        folder = layout.node_dir(node.name)
        marker = folder / "instance-id"
        if marker.exists() and marker.read_text() != node.instance_id:
            shutil.rmtree(folder)  # a new instance has a new disk
        for path in (layout.node_root(node.name), layout.node_home(node.name)):
            path.mkdir(parents=True, exist_ok=True)
        marker.write_text(node.instance_id)
        generations = instances_file(layout, node.name)
        seen = generations.read_text().split() if generations.exists() else []
        if node.instance_id not in seen:
            generations.write_text(" ".join([*seen, node.instance_id]))
        if not (folder / "host_key").exists():
            self._new_host_key(node)
        # canonical/cloud-init ubuntu/24.1.3-0ubuntu1_22.04.5 cloudinit/config/cc_ssh.py: the
        # datasource's `public-keys` (cloudinit/sources/__init__.py `get_public_ssh_keys`; on EC2
        # the launch key pair) go to the default user's authorized_keys
        (folder / "authorized_keys").write_text(self._public_key(node.key_name))
        user_data = self._user_data(node)
        # cloud-init keeps the instance's user data at /var/lib/cloud/instance/user-data.txt
        cloud = layout.node_root(node.name) / "var/lib/cloud/instance"
        cloud.mkdir(parents=True, exist_ok=True)
        (cloud / "user-data.txt").write_text(user_data)
        # k3s-io/k3s install.sh: INSTALL_K3S_VERSION pins the release the script downloads
        version = re.search(r"INSTALL_K3S_VERSION=[\"']?(v[\w.+-]+)", user_data)
        info = {
            "name": node.name,
            "instance_id": node.instance_id,
            "public_ip": node.public_ip,
            "private_ip": node.private_ip,
            "booted_at": node.boot_at,
            "k3s_version": version[1] if version else DEFAULT_K3S,
        }
        temporary = layout.instance_file(node.name).with_suffix(".tmp")
        temporary.write_text(json.dumps(info))
        os.replace(temporary, layout.instance_file(node.name))
        # the fault is the primary lab's (a second lab on the simulator boots cleanly)
        failing = node.stack == self.layouts.primary and failed_at_boot(layout, self.config, node.name)
        write_boot_files(layout, node.name, info, failing)
        write_boot_script(layout, node.name, TOOLS_DIR)
        node.booted = True
        self.on_event(f"{self._label(node)}: booted ({node.instance_id}, {node.public_ip})")

    def _public_key(self, key_name: str | None) -> str:
        if not key_name:
            return ""
        pairs = self.ec2.describe_key_pairs(KeyNames=[key_name], IncludePublicKey=True)
        return pairs["KeyPairs"][0]["PublicKey"].strip() + "\n"

    def _user_data(self, node: Node) -> str:
        reply = self.ec2.describe_instance_attribute(InstanceId=node.instance_id, Attribute="userData")
        value = reply.get("UserData", {}).get("Value")
        return base64.b64decode(value).decode(errors="replace") if value else ""

    def _new_host_key(self, node: Node) -> None:
        """A new instance has new host keys (cloud-init cc_ssh deletes and regenerates them on a
        new instance id), so a known_hosts entry for the old one no longer matches."""
        key = node.layout.node_dir(node.name) / "host_key"
        for path in (key, key.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", node.name, "-f", str(key)],
            check=True,
            stdin=subprocess.DEVNULL,
        )

    # -- sshd ----------------------------------------------------------------------------------
    def _sshd_config(self, node: Node) -> Path:
        folder = node.layout.node_dir(node.name)
        environment = {
            "PATH": f"{TOOLS_DIR}:/usr/bin:/bin",
            "HOME": str(node.layout.node_home(node.name)),
            "LABSIM_NODE": node.name,
            "LABSIM_DIR": str(node.layout.root),
            "LABSIM_PYTHON": self.config.python,
        }
        setenv = " ".join(f'"{name}={value}"' for name, value in environment.items())
        text = f"""\
ListenAddress {node.public_ip}:{self.ssh_port}
HostKey {folder / "host_key"}
AuthorizedKeysFile {folder / "authorized_keys"}
PidFile {folder / "sshd.pid"}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {self.ssh_user}
AcceptEnv LANG LC_*
PrintMotd no
PrintLastLog no
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp internal-sftp
SetEnv {setenv}
"""
        path = folder / "sshd_config"
        path.write_text(text)
        return path

    def _start_sshd(self, node: Node) -> None:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        config = self._sshd_config(node)
        with open(node.layout.node_dir(node.name) / "sshd.log", "ab") as log:
            try:
                node.process = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            except OSError as error:  # reported once, not at every tick
                node.sshd_at = 0.0
                raise RuntimeError(f"{node.name}: cannot run {SSHD}: {error}") from None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and node.process.poll() is None:
            try:
                socket.create_connection((node.public_ip, self.ssh_port), timeout=0.5).close()
                self.on_event(f"{self._label(node)}: sshd listening on {node.public_ip}:{self.ssh_port}")
                return
            except OSError:
                time.sleep(0.02)
        node.process.kill()
        node.process.wait()
        node.process, node.sshd_at = None, 0.0  # no retry: the error is reported instead
        log_text = (node.layout.node_dir(node.name) / "sshd.log").read_text(errors="replace")
        raise RuntimeError(f"{node.name}: sshd did not start:\n{log_text[-2000:]}")

    def _stop_sshd(self, node: Node) -> None:
        """Stop the listener and every session under it, as a crash or restart would."""
        process, node.process = node.process, None
        if process is None:
            return
        sessions = descendants(process.pid)
        process.terminate()
        _signal_all(sessions, signal.SIGTERM)
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and any(_alive(p) for p in sessions):
            time.sleep(0.02)
        _signal_all([p for p in sessions if _alive(p)], signal.SIGKILL)

    # -- API for LabSim ------------------------------------------------------------------------
    def rotate_host_key(self, name: str, stack: str | None = None) -> None:
        with self.lock:
            node = self.nodes.get((stack or self.layouts.primary, name))
            if node is None or not node.booted:
                raise KeyError(f"{name} has not booted")
            self._stop_sshd(node)
            self._new_host_key(node)
            self._start_sshd(node)

    def listening(self, name: str, stack: str | None = None) -> str | None:
        """The node's address once its sshd runs."""
        with self.lock:
            node = self.nodes.get((stack or self.layouts.primary, name))
            return node.public_ip if node and node.process else None

    def shutdown(self) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=5)
        with self.lock:
            for node in self.nodes.values():
                self._stop_sshd(node)
