"""The edges of the commands that reach a running lab, through the real CLI and one simulated lab:
kubectl with stdin and local files, ssh with a command, the Kiali tunnel's port and failures, and
a learner's own scenario run from outside the repository."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import read_until
from tests.e2e.test_access import _taken_within
from tests.labsim import LabSim
from tests.scenario.e2e import REPO, environment, ready_lab

CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: default
data:
  from: {name}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabSim]:
    with ready_lab(tmp_path_factory.mktemp("labsim-edges"), egress="gateway") as sim:
        yield sim


def run(
    sim: LabSim, *args: str, stdin: str | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=cwd,
        env=environment(sim),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "ThreadException" not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def config_maps(sim: LabSim) -> set[str]:
    return {o["metadata"]["name"] for o in sim.objects("ConfigMap", "default")}


def test_kubectl_passes_stdin_uploads_local_files_and_folders_and_its_exit_code(
    lab: LabSim, tmp_path: Path
) -> None:
    piped = run(lab, "kubectl", "--", "apply", "-f", "-", stdin=CONFIG_MAP.format(name="piped"))
    assert piped.returncode == 0, piped.stderr
    assert "configmap/piped created" in piped.stdout

    (tmp_path / "mine.yaml").write_text(CONFIG_MAP.format(name="mine"))
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "a.yaml").write_text(CONFIG_MAP.format(name="folder-a"))
    (folder / "b.yaml").write_text(CONFIG_MAP.format(name="folder-b"))
    files = run(lab, "kubectl", "--", "apply", "-f", str(tmp_path / "mine.yaml"), f"--filename={folder}")
    assert files.returncode == 0, files.stderr
    assert {"piped", "mine", "folder-a", "folder-b"} <= config_maps(lab)
    argv = next(e["argv"] for e in reversed(lab.commands("kubectl")) if e["argv"][1] == "apply")
    # kubectl on the node read copies, not the laptop's paths (which on AWS are not there)
    assert str(tmp_path) not in " ".join(argv), argv
    copies = [Path(a.split("=", 1)[-1]) for a in argv if "/lab-kubectl-" in a]
    assert [c.name for c in copies] == ["mine.yaml", "more"], argv
    assert not copies[0].parent.parent.exists(), "the copies are removed afterwards"

    missing = run(lab, "kubectl", "--", "get", "configmap", "nope", "-n", "default")
    recorded = lab.commands("kubectl")[-1]
    assert recorded["argv"][1:4] == ["get", "configmap", "nope"]
    assert missing.returncode == recorded["exit"] != 0, "kubectl's own exit code"
    assert 'configmaps "nope" not found' in missing.stderr


def test_kubectl_refuses_to_wait_on_a_terminal_for_stdin(lab: LabSim) -> None:
    """`-f -` with a terminal as stdin would wait for ever: one line instead (a pty stands in)."""
    import pty

    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "invoke", "kubectl", "--", "apply", "-f", "-"],
            cwd=REPO,
            env=environment(lab),
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(leader)
        os.close(follower)
    assert result.returncode == 2
    assert "pipe the input in" in one_line(result)


def test_ssh_with_a_command_runs_it_there_and_returns_its_exit_code(lab: LabSim) -> None:
    result = run(lab, "ssh", "--node", "k3s-w1", "--", "echo node=$LABSIM_NODE; exit 3")
    assert result.stdout.strip() == "node=k3s-w1", result.stderr
    assert result.returncode == 3


def test_kiali_refuses_a_bad_port_and_a_busy_one_before_any_work(lab: LabSim) -> None:
    before = len(lab.commands())
    bad = run(lab, "kiali", "--port", "abc")
    assert bad.returncode == 2 and "--port 'abc' is not a port number" in one_line(bad)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        busy = run(lab, "kiali", "--port", str(port))
    line = one_line(busy)
    assert busy.returncode == 2
    assert f"local port {port} is already in use by process {os.getpid()}" in line, line
    assert "--port 0" in line
    assert len(lab.commands()) == before, "nothing ran on the lab"


def test_kiali_port_0_picks_a_free_port_and_a_lost_tunnel_is_one_line(lab: LabSim) -> None:
    tunnel = subprocess.Popen(
        [sys.executable, "-m", "invoke", "kiali", "--port", "0"],
        cwd=REPO,
        env=environment(lab),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_until(tunnel, "http://localhost:")
        port = int(re.search(r"localhost:(\d+)/kiali", line)[1])  # type: ignore[index]
        assert port != 0 and _taken_within(port, seconds=10)
        lab.restart_sshd("k3s-s")  # the SSH session under the tunnel ends, as when a node reboots
        out, err = tunnel.communicate(timeout=30)
    finally:
        if tunnel.poll() is None:
            tunnel.send_signal(signal.SIGINT)
            tunnel.communicate(timeout=30)
    assert tunnel.returncode == 1, out + err
    assert err.strip().splitlines() == [
        "error: the SSH connection of the tunnel was lost → run `invoke kiali` again once the node answers SSH"
    ], err
    assert "Traceback" not in out + err


def test_a_learners_own_scenario_runs_from_outside_the_repository(lab: LabSim, tmp_path: Path) -> None:
    lessons = tmp_path / "lessons"
    lessons.mkdir()
    new = run(
        lab, "-r", str(REPO), "scenario", "new", "my-http", "--from", "egress-gateway-http", cwd=lessons
    )
    assert new.returncode == 0, new.stderr
    written = lessons / "my-http.yaml"
    assert "apply: my-http/egress-gateway.yaml" in written.read_text()
    manifest = lessons / "my-http" / "egress-gateway.yaml"
    manifest.write_text(manifest.read_text().replace("name: cnn", "name: cnn  # mine", 1))

    result = run(lab, "-r", str(REPO), "scenario", "./my-http.yaml", cwd=lessons)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ my-http passed" in result.stdout
    applied = [e for e in lab.commands("kubectl") if e["argv"][1:4] == ["apply", "-f", "-"]]
    assert any("# mine" in (e["stdin"] or "") for e in applied), "its own manifests, relative to it"

    starter = run(lab, "-r", str(REPO), "scenario", "new", "my-start", cwd=lessons)
    assert starter.returncode == 0, starter.stderr
    assert (lessons / "my-start.yaml").read_text().count("name: my-start") == 1
    again = run(lab, "-r", str(REPO), "scenario", "new", "my-start", cwd=lessons)
    assert again.returncode == 2 and "already exists" in one_line(again)


def test_a_preflight_stop_names_expected_findings(lab: LabSim, tmp_path: Path) -> None:
    new = run(lab, "-r", str(REPO), "scenario", "new", "lesson", "--from", "egress-sni-broken", cwd=tmp_path)
    assert new.returncode == 0, new.stderr
    path = tmp_path / "lesson.yaml"
    path.write_text(re.sub(r"(?m)^expectedFindings:.*\n", "", path.read_text()))
    before = len(lab.commands("kubectl"))
    result = run(lab, "scenario", str(path))
    assert result.returncode == 1
    assert re.search(
        r"list them under expectedFindings: \[KIA0203, LAB0101, LAB0201, LAB0401\]", result.stdout
    )
    assert not [c for c in lab.commands("kubectl")[before:] if c["argv"][1] == "apply"], (
        "stopped before applying"
    )


def test_an_unwritable_junit_target_is_refused_before_any_work(lab: LabSim, tmp_path: Path) -> None:
    before = len(lab.commands())
    folder = run(lab, "scenario", "egress-gateway-http", "--junit", str(tmp_path))
    assert folder.returncode == 2 and "is a folder" in one_line(folder)
    (tmp_path / "file").write_text("")
    under_a_file = run(lab, "scenario", "egress-gateway-http", "--junit", str(tmp_path / "file" / "j.xml"))
    assert under_a_file.returncode == 2 and "is not a folder" in one_line(under_a_file)
    assert len(lab.commands()) == before
