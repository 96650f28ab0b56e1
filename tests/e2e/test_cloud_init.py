"""cloud-init: a slow but healthy boot passes, a stuck one says where it is, a degraded one warns."""

from __future__ import annotations

from lab.steps.cloudinit import WORK_ALLOWANCE, boot_deadlines
from lab.template import load_template
from tests.e2e.conftest import cli_for


def test_a_boot_slower_than_ready_timeout_is_not_a_failure(labsim_factory) -> None:
    sim = labsim_factory(cloud_init_delay=4, ready_timeout=2)
    up = cli_for(sim)("up", "--until", "cloud-init")
    assert up.returncode == 0, up.stdout + up.stderr
    waits = [e for e in sim.commands("cloud-init") if "--wait" in e["argv"]]
    assert {e["node"] for e in waits} == {"k3s-s", "k3s-w1", "k3s-w2", "testpc"}
    assert all(e["exit"] == 0 and e["ended"] - e["ts"] > 2 for e in waits), "each wait outlived ready_timeout"


def test_a_boot_past_its_deadline_names_the_node_its_stage_and_its_last_lines(labsim_factory) -> None:
    sim = labsim_factory(cloud_init_delay=30)
    up = cli_for(sim, LAB_BOOT_TIMEOUT="3")("up", "--until", "cloud-init")
    assert up.returncode != 0
    assert "Traceback" not in up.stderr
    assert "still running after 3s (boot_timeout), in stage modules-final" in up.stderr
    assert "[INFO]  systemd: Starting k3s" in up.stderr, "the log's last lines, as far as the boot got"
    assert "finished at" not in up.stderr
    assert "LAB_BOOT_TIMEOUT" in up.stderr


def test_a_degraded_boot_is_a_warning_that_names_the_node(labsim_factory) -> None:
    sim = labsim_factory(cloud_init_degraded="k3s-w1")
    up = cli_for(sim)("up", "--until", "cloud-init")
    assert up.returncode == 0, up.stdout + up.stderr
    warned = [line for line in up.stdout.splitlines() if line.startswith("!")]
    assert warned, up.stdout
    assert all("k3s-w1" in line and "DEPRECATED: Deprecated cloud-config" in line for line in warned)
    assert not any(n in line for line in warned for n in ("k3s-s", "k3s-w2", "testpc"))
    assert sim.commands("cloud-init", node="k3s-w1")[0]["exit"] == 0, "jammy's cloud-init exits 0 here"


def test_boot_deadlines_come_from_the_user_data() -> None:
    template = load_template()
    deadlines = boot_deadlines(template)
    # agents: two apt commands that may each wait 300 s for the lock, then 900 s for the server
    assert deadlines["k3s-w1"] == deadlines["k3s-w2"] == 300 + 300 + 900 + WORK_ALLOWANCE
    assert deadlines["k3s-s"] == 300 + 300 + WORK_ALLOWANCE
    # testpc: a third apt command, nginx for the egress-testpc-source-ip scenario
    assert deadlines["testpc"] == 300 + 300 + 300 + WORK_ALLOWANCE
    agent = template["Resources"]["K3sW1"]["Properties"]["UserData"]
    agent["Fn::Base64"]["Fn::Sub"] = agent["Fn::Base64"]["Fn::Sub"].replace("SECONDS + 900", "SECONDS + 1200")
    assert boot_deadlines(template)["k3s-w1"] == 300 + 300 + 1200 + WORK_ALLOWANCE
