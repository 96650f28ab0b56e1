"""lab.nodes against a simulated node's real sshd: keys that do not fit fail fast and clearly."""

from __future__ import annotations

from pathlib import Path

import paramiko
import pytest

from lab.errors import LabError
from lab.nodes import Node
from tests.e2e.conftest import cli_for, lab_dir
from tests.labsim.sim import LabSim


def _node(sim: LabSim, key: Path, **kw: float) -> Node:
    home = lab_dir(sim)
    return Node(
        "k3s-s",
        sim.wait_for_sshd("k3s-s"),
        user=sim.ssh_user,
        port=sim.ssh_port,
        key_file=key,
        known_hosts=home / "known_hosts",
        **kw,
    )


def test_a_key_the_node_refuses_is_an_error_not_a_wait(labsim: LabSim, tmp_path: Path) -> None:
    assert cli_for(labsim)("up", "--until", "ssh").returncode == 0
    wrong = tmp_path / "wrong.pem"
    paramiko.RSAKey.generate(2048).write_private_key_file(str(wrong))
    node = _node(labsim, wrong, connect_deadline=30, auth_grace=0)
    with pytest.raises(LabError, match="refused the key"):
        node.connect()

    with pytest.raises(LabError, match="is missing"):
        _node(labsim, tmp_path / "gone.pem").connect()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    with pytest.raises(LabError, match="cannot read the private key"):
        _node(labsim, garbage).connect()

    right = _node(labsim, lab_dir(labsim) / "lab-egress.pem")
    assert right.run("echo ok").stdout.strip() == "ok"
    right.close()
