"""Several labs side by side on one simulator, as the README promises: the real CLI, two stacks."""

from __future__ import annotations

import json

from tests.e2e.conftest import cli_for
from tests.labsim.sim import LabSim
from tests.scenario.e2e import start

SECOND = "half2"


def test_two_labs_run_side_by_side_and_down_of_one_leaves_the_other(labsim: LabSim) -> None:
    cli = cli_for(labsim)
    ups = [start(labsim, "up"), start(labsim, "up", "--name", SECOND)]  # at once, as two shells would
    for process in ups:
        out, err = process.communicate(timeout=400)
        assert process.returncode == 0, out + err
    stack = f"lab-{SECOND}"
    # Each lab is its own cluster: its own nodes answered, its own pods were created.
    assert labsim.address("k3s-s", stack) not in (None, labsim.address("k3s-s"))
    for lab in (None, stack):
        pods = {o["metadata"]["name"] for o in labsim.objects("Pod", "default", stack=lab)}
        assert {"pod1", "pod2"} <= pods, (lab, pods)

    first_lab_calls = len(labsim.commands("kubectl"))
    run = cli("scenario", "egress-gateway-http", "--name", SECOND)
    assert run.returncode == 0, run.stdout + run.stderr
    applied = [e["argv"] for e in labsim.commands("kubectl", stack=stack) if e["argv"][1:2] == ["apply"]]
    assert applied, "the scenario ran on the second lab's k3s-s"
    assert len(labsim.commands("kubectl")) == first_lab_calls, "and nothing on the first lab's"

    every = cli("status", "--all")
    assert every.returncode == 0, every.stderr
    assert "lab-egress" in every.stdout and stack in every.stdout

    down = cli("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert labsim.address("k3s-s") is None, "the first lab's nodes are gone"
    pods = cli("kubectl", "--name", SECOND, "--", "get", "pods", "-n", "default", "-o", "json")
    assert pods.returncode == 0, pods.stderr
    assert {p["metadata"]["name"] for p in json.loads(pods.stdout)["items"]} >= {"pod1", "pod2"}
    after = cli("status", "--all")
    assert stack in after.stdout and "lab-egress" not in after.stdout.replace(stack, "")
