"""A lab that survives its user: `down` during `up`, damaged or missing local state, a lost key."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import boto3

from tests.e2e.conftest import cli_for, lab_dir, read_until
from tests.labsim.sim import LabSim
from tests.scenario.e2e import start

NODES = ("k3s-s", "k3s-w1", "k3s-w2", "testpc")


def _ec2(sim: LabSim):
    return boto3.client(
        "ec2",
        endpoint_url=sim.env["AWS_ENDPOINT_URL"],
        region_name=sim.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _instance_states(sim: LabSim) -> list[str]:
    reply = _ec2(sim).describe_instances()
    return sorted(i["State"]["Name"] for r in reply["Reservations"] for i in r["Instances"])


def _clean(result) -> None:
    assert "Traceback" not in result.stdout + result.stderr
    assert "unexpected" not in result.stdout + result.stderr


def test_down_during_up_stops_up_at_once_and_nothing_is_written_after_the_archive(labsim_factory) -> None:
    sim = labsim_factory(cloud_init_delay=120)
    cli = cli_for(sim)
    up = start(sim, "up")
    read_until(up, "Waiting for cloud-init")
    second = cli("up")
    assert second.returncode == 1, second.stdout + second.stderr
    assert f"is busy: `invoke up` (pid {up.pid}" in second.stderr
    _clean(second)

    down = start(sim, "down")
    began = time.monotonic()
    up_out, up_err = up.communicate(timeout=60)
    up_stopped = time.monotonic() - began
    down_out, down_err = down.communicate(timeout=120)

    assert down.returncode == 0, down_out + down_err
    assert f"`invoke up` (pid {up.pid}" in down_out and "told it to stop" in down_out
    assert up.returncode == 1, up_out + up_err
    assert "`invoke down` is deleting this lab: up stopped" in up_err
    assert "Traceback" not in up_err and "Nothing was deleted" not in up_out
    # Far below cloud-init's 120 s wait: the up noticed and stopped, it did not wait it out.
    assert up_stopped < 15, up_stopped
    assert _instance_states(sim) == ["terminated"] * 4
    assert not lab_dir(sim).exists(), "no state written after down archived the folder"
    (archive,) = (sim.lab_home / "archive").iterdir()
    state = json.loads((archive / "state.json").read_text())
    assert state["stack_id"] and not state["steps"].get("cloud-init", {}).get("done")


def test_damaged_and_missing_state_and_a_lost_key_are_recovered_from_the_stack(labsim_factory) -> None:
    sim = labsim_factory()
    cli = cli_for(sim)
    home = lab_dir(sim)
    assert cli("up", "--until", "ssh").returncode == 0
    addresses = [sim.address(n) for n in NODES]
    good = json.loads((home / "state.json").read_text())

    # A wrong type, as a hand edit leaves it.
    (home / "state.json").write_text(json.dumps({**good, "nodes": []}))
    status = cli("status")
    assert status.returncode == 0, status.stdout + status.stderr
    _clean(status)
    assert "state.nodes is list, not an object" in status.stdout
    assert "read lab 'egress' from stack lab-egress" in status.stdout
    assert all(address in status.stdout for address in addresses)

    # A holder that died (kill -9, a closed laptop) left its name in the lock: it is taken over.
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = {"pid": dead.pid, "command": "up", "started_at": "2026-01-01T00:00:00+00:00"}
    (home / "lock").write_text(json.dumps(stale))
    again = cli("up", "--until", "ssh")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "state.json is damaged: rebuilt lab 'egress' from stack lab-egress" in again.stdout
    rebuilt = json.loads((home / "state.json").read_text())
    assert {n: v["public_ip"] for n, v in rebuilt["nodes"].items()} == dict(zip(NODES, addresses, strict=True))
    assert rebuilt["spec"] == good["spec"], "every fact of the spec, read back from the stack"
    assert list(home.glob("state.damaged-*.json")), "the damaged file is kept for its owner"

    # Not JSON at all: down needs none of it.
    (home / "state.json").write_text("{not json")
    (home / "lab-egress.pem").unlink()
    # The folder gone, the stack alive: the key is lost for good, and up says the one fix.
    shutil.rmtree(home)
    lost = cli("up")
    assert lost.returncode == 1
    _clean(lost)
    assert "no local state" in lost.stdout and "rebuilt lab 'egress' from stack lab-egress" in lost.stdout
    assert "private key of key pair 'lab-egress' is not in" in lost.stderr
    assert "run `invoke down` (it needs no key), then `invoke up`" in lost.stderr
    assert "delete-key-pair" not in lost.stderr
    assert _instance_states(sim) == ["running"] * 4, "nothing stranded, nothing deleted"
    assert [p["KeyName"] for p in _ec2(sim).describe_key_pairs()["KeyPairs"]] == ["lab-egress"]

    status = cli("status")
    assert status.returncode == 0 and all(address in status.stdout for address in addresses)

    (home / "state.json").write_text("{not json")
    down = cli("down")
    assert down.returncode == 0, down.stdout + down.stderr
    _clean(down)
    assert "is damaged" in down.stdout and "4 instances terminated" in down.stdout
    assert _instance_states(sim) == ["terminated"] * 4
    assert _ec2(sim).describe_key_pairs()["KeyPairs"] == []


def _cluster_nodes(sim: LabSim) -> list[str]:
    return sorted(n["metadata"]["name"] for n in sim.objects("Node"))


def test_after_a_transient_cloud_init_failure_up_again_reruns_the_boot_script(labsim_factory) -> None:
    sim = labsim_factory(cloud_init_fail="k3s-w2", cloud_init_fault="transient")
    cli = cli_for(sim)
    failed = cli("up", "--until", "nodes-ready")
    assert failed.returncode == 1
    _clean(failed)
    assert "cloud-init failed on k3s-w2" in failed.stderr
    assert "`invoke up` again re-runs the boot script of k3s-w2 (safe to re-run)" in failed.stderr
    assert "`invoke up --rebuild k3s-w2` replaces k3s-w2" in failed.stderr

    again = cli("up", "--until", "nodes-ready")

    assert again.returncode == 0, again.stdout + again.stderr
    assert "k3s-w2: its boot script ran again and succeeded" in again.stdout
    (rerun,) = sim.commands("boot-script")
    assert rerun["node"] == "k3s-w2" and rerun["exit"] == 0
    log = (sim.layout.node_root("k3s-w2") / "var/log/cloud-init-output.log").read_text()
    assert "[ERROR]  Download failed" in log and log.rstrip().endswith("[INFO]  systemd: Starting k3s-agent"), (
        "the re-run's output is appended to the log cloud-init wrote"
    )
    assert _cluster_nodes(sim) == ["k3s-s", "k3s-w1", "k3s-w2"]


def test_a_node_that_fails_again_is_replaced_by_up_rebuild_at_its_private_address(labsim_factory) -> None:
    sim = labsim_factory(cloud_init_fail="k3s-w2", cloud_init_fault="first-instance")
    cli = cli_for(sim)
    assert cli("up", "--until", "nodes-ready").returncode == 1
    before = json.loads((lab_dir(sim) / "state.json").read_text())["nodes"]
    again = cli("up", "--until", "nodes-ready")
    assert again.returncode == 1
    _clean(again)
    assert "the boot script failed again on k3s-w2" in again.stderr
    assert "`invoke up --rebuild k3s-w2` replaces k3s-w2 with a new instance (same private address)" in again.stderr
    assert "re-runs the boot script" not in again.stderr, "a re-run is not offered twice"

    rebuilt = cli("up", "--rebuild", "k3s-w2", "--until", "nodes-ready", timeout=300)

    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    after = json.loads((lab_dir(sim) / "state.json").read_text())["nodes"]
    assert after["k3s-w2"]["instance_id"] != before["k3s-w2"]["instance_id"]
    assert after["k3s-w2"]["private_ip"] == before["k3s-w2"]["private_ip"] == "192.168.10.102"
    assert {n: after[n]["instance_id"] for n in ("k3s-s", "k3s-w1", "testpc")} == {
        n: before[n]["instance_id"] for n in ("k3s-s", "k3s-w1", "testpc")
    }, "only that node was replaced"
    assert _instance_states(sim).count("running") == 4 and _instance_states(sim).count("terminated") == 1
    assert _cluster_nodes(sim) == ["k3s-s", "k3s-w1", "k3s-w2"]
    delete = [e["argv"] for e in sim.commands("kubectl") if e["argv"][1:3] == ["delete", "node"]]
    assert delete and delete[0][3] == "k3s-w2", "k3s forgets the old node's password first"
