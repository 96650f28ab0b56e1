"""Getting at a running lab: kubectl, ssh, logs, status --all and analyze --live."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import REPO, cli_for, lab_dir
from tests.labsim.sim import LabSim


def test_access_commands_on_a_running_lab(labsim: LabSim) -> None:
    cli = cli_for(labsim)
    assert cli("up").returncode == 0

    pods = cli("kubectl", "--", "get", "pods", "-n", "default", "-o", "json")
    assert pods.returncode == 0, pods.stderr
    assert {p["metadata"]["name"] for p in json.loads(pods.stdout)["items"]} >= {"pod1", "pod2"}
    assert labsim.commands("kubectl")[-1]["argv"][1:] == ["get", "pods", "-n", "default", "-o", "json"]
    missing = cli("kubectl", "--", "get", "pod", "nope", "-n", "default")
    assert missing.returncode != 0 and "nope" in missing.stderr, "kubectl's own exit code and message"

    env = {k: v for k, v in labsim.environ().items()}
    shell = subprocess.run(
        [sys.executable, "-m", "invoke", "ssh", "--node", "k3s-w1"],
        input="echo node=$LABSIM_NODE\nexit\n",
        cwd=REPO,
        env=env | {"AWS_EC2_METADATA_DISABLED": "true"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "node=k3s-w1" in shell.stdout, shell.stderr

    logs = cli("logs")
    assert logs.returncode == 0, logs.stderr
    bundle = next((lab_dir(labsim) / "logs").iterdir())
    assert (bundle / "k3s-s" / "nodes.json").read_text().strip().startswith("{")
    agent = (bundle / "k3s-w1" / "k3s-agent.journal.txt").read_text()
    assert "k3s-agent" in agent and not agent.startswith("#"), agent[:200]
    journal = [e["argv"] for e in labsim.commands("journalctl", node="k3s-w1")]
    assert ["journalctl", "-u", "k3s-agent", "--no-pager", "-n", "200"] in journal
    testpc_log = labsim.layout.node_root("testpc") / "var/log/cloud-init-output.log"
    assert (bundle / "testpc" / "cloud-init-output.log").read_text() == testpc_log.read_text()

    every = cli("status", "--all")
    assert every.returncode == 0 and "lab-egress" in every.stdout and "CREATE_COMPLETE" in every.stdout

    live = cli("analyze", "--scenario", "egress-sni", "--live", "--format", "json")
    assert live.returncode == 0, live.stdout + live.stderr
    assert all(f["severity"] != "error" for f in json.loads(live.stdout))
    assert any(e["argv"][1:3] == ["get", "pods,services"] for e in labsim.commands("kubectl"))
    assert any(e["argv"][1:] == ["analyze", "-A", "-o", "json"] for e in labsim.commands("istioctl"))


def test_analyze_and_explain_take_paths_or_a_scenario_from_the_command_line(tmp_path) -> None:
    """Offline: the tasks' argument handling (a positional path, or --scenario instead)."""
    from tests.lifecycle.conftest import base_env

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=REPO,
            env=base_env(tmp_path),
            capture_output=True,
            text=True,
        )

    broken = run("analyze", "manifests/egress-sni-broken", "--format", "json")
    assert broken.returncode == 1
    codes = {f["code"] for f in json.loads(broken.stdout)}
    assert {"KIA0203", "LAB0101", "LAB0201", "LAB0401"} <= codes
    assert run("analyze", "--scenario", "egress-sni").returncode == 0
    nothing = run("analyze")
    assert nothing.returncode != 0 and "Traceback" not in nothing.stderr
    path = run(
        "explain", "--scenario", "egress-sni-broken", "--from", "pod1", "--to", "https://en.wikipedia.org/"
    )
    assert "PassthroughCluster" in path.stdout
    dot = run("explain", "manifests/egress-sni", "--to", "https://en.wikipedia.org/", "--format", "dot")
    assert dot.returncode == 0 and dot.stdout.lstrip().startswith("digraph")


def test_kiali_tunnel_opens_and_closes_on_ctrl_c(labsim: LabSim) -> None:
    import signal
    import socket

    from tests.e2e.conftest import read_until
    from tests.scenario.e2e import environment

    assert cli_for(labsim)("up").returncode == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tunnel = subprocess.Popen(
        [sys.executable, "-m", "invoke", "kiali", "--port", str(port)],
        cwd=REPO,
        env=environment(labsim),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        read_until(tunnel, f"http://localhost:{port}/kiali")
        # Listening is shown by the port being taken; connecting would send the simulator's sshd
        # to Kiali's ClusterIP, an address outside this machine's loopback.
        # fabric binds the local port in its tunnel thread, a moment after the line is printed.
        assert _taken_within(port, seconds=10), f"nothing listens on 127.0.0.1:{port}"
        kiali = [e["argv"] for e in labsim.commands("kubectl") if "kiali" in e["argv"]]
        assert ["kubectl", "get", "service", "kiali", "-n", "istio-system", "-o", "json"] in kiali
    finally:
        tunnel.send_signal(signal.SIGINT)
        out, err = tunnel.communicate(timeout=30)
    assert tunnel.returncode == 0, err
    assert "Tunnel closed." in out


def _taken_within(port: int, seconds: float) -> bool:
    """Whether something LISTENs on the port, read from /proc: probing by binding would race
    with the tunnel's own bind, and connecting would send traffic through it."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
        time.sleep(0.1)
    return False
