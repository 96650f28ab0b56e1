"""Getting at a running lab: kubectl, ssh, logs, status --all and analyze --live."""

from __future__ import annotations

import json
import subprocess
import sys

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
    assert (bundle / "k3s-w1" / "k3s-agent.journal.txt").exists()
    assert (bundle / "testpc" / "cloud-init-output.log").exists()

    every = cli("status", "--all")
    assert every.returncode == 0 and "lab-egress" in every.stdout and "CREATE_COMPLETE" in every.stdout

    live = cli("analyze", "--scenario", "egress-sni", "--live", "--format", "json")
    assert live.returncode == 0, live.stdout + live.stderr
    assert all(f["severity"] != "error" for f in json.loads(live.stdout))
    assert any(e["argv"][1:3] == ["get", "pods,services"] for e in labsim.commands("kubectl"))


def test_analyze_and_explain_take_paths_or_a_scenario_from_the_command_line(tmp_path) -> None:
    """Offline: the tasks' argument handling (a positional path, or --scenario instead)."""
    import subprocess
    import sys

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
