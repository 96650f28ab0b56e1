"""One lab, one `up` (raced by a second): the lock, drift repaired by `up`, `invoke reset` and a
cleanup abandoned with a second Ctrl-C. The tests run in order on the same lab, each starting from
the lab as `up` left it and leaving it so."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import REPO, lab_dir, read_until
from tests.labsim.sim import LabSim
from tests.scenario.e2e import invoke, kubectl_calls, snapshot, start

pytestmark = pytest.mark.e2e
BROKEN_GATEWAY = REPO / "manifests" / "egress-sni-broken" / "egressgateway.yaml"
DEMO_EGRESS_PORTS = [("http2", 80, 8080), ("https", 443, 8443)]


@dataclass
class Race:
    sim: LabSim
    first: tuple[int, str, str]
    second_up: tuple[int, str, str]
    reset: tuple[int, str, str]


def _installs(sim: LabSim) -> list[dict]:
    return [e for e in sim.commands("istioctl") if e["argv"][1:2] == ["install"]]


@pytest.fixture(scope="module")
def race(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Race]:
    """`up`, and while it installs Istio (slowed to a few seconds), a second `up` and a `reset`."""
    with LabSim(tmp_path_factory.mktemp("labsim-recovery"), istio_ready_delay=6) as sim:
        first = start(sim, "up")
        read_until(first, "Installing Istio", timeout=120)
        second = invoke(sim, "up")
        reset = invoke(sim, "reset", "--yes")
        out, err = first.communicate(timeout=300)
        yield Race(
            sim,
            (first.returncode, out, err),
            (second.returncode, second.stdout, second.stderr),
            (reset.returncode, reset.stdout, reset.stderr),
        )


@pytest.fixture
def lab(race: Race) -> LabSim:
    assert race.first[0] == 0, race.first
    return race.sim


def _gateway_ports(sim: LabSim) -> list[tuple[str, int, int]]:
    (service,) = [s for s in sim.objects("Service", "istio-system") if s["metadata"]["name"] == "istio-egressgateway"]
    return [(p.get("name"), p["port"], p.get("targetPort")) for p in service["spec"]["ports"]]


def _gateway_args(sim: LabSim) -> list[str]:
    (deployment,) = [
        d for d in sim.objects("Deployment", "istio-system") if d["metadata"]["name"] == "istio-egressgateway"
    ]
    return deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_a_second_command_is_refused_while_up_runs_and_istio_is_installed_once(race: Race) -> None:
    code, out, err = race.first
    assert code == 0, out + err
    for refused in (race.second_up, race.reset):
        assert refused[0] == 1, refused
        assert "lab 'egress' is busy: `invoke up` (pid" in refused[2]
        assert "Traceback" not in refused[2]
    assert len(_installs(race.sim)) == 1, "no double install"
    assert not (lab_dir(race.sim) / "lock").read_text().strip(), "released: no holder recorded"


def test_a_clobbered_gateway_is_reported_by_name_and_repaired_by_up(lab: LabSim) -> None:
    applied = invoke(lab, "kubectl", "--", "apply", "-f", str(BROKEN_GATEWAY))
    assert applied.returncode == 0, applied.stderr
    # kubectl apply is a strategic merge: the file's one port merges into the Service's ports by its
    # key (no change), but its container args, a plain list, replace the installed ones
    assert _gateway_ports(lab) == DEMO_EGRESS_PORTS
    assert _gateway_args(lab) == ["proxy", "router"]
    installs = len(_installs(lab))

    up = invoke(lab, "up", timeout=300)

    assert up.returncode == 0, up.stdout + up.stderr
    assert "drift: Deployment istio-system/istio-egressgateway differs from the install at" in up.stdout
    assert "drift: Service" not in up.stdout
    assert "repaired 1 object(s) by re-running the install" in up.stdout
    assert len(_installs(lab)) == installs + 1
    assert _gateway_ports(lab) == DEMO_EGRESS_PORTS
    (deployment,) = [
        d for d in lab.objects("Deployment", "istio-system") if d["metadata"]["name"] == "istio-egressgateway"
    ]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "istio-egressgateway-service-account"
    assert pod["containers"][0]["args"][:2] == ["proxy", "router"] and len(pod["containers"][0]["args"]) > 2

    again = invoke(lab, "up", timeout=300)
    assert again.returncode == 0 and "drift:" not in again.stdout
    assert len(_installs(lab)) == installs + 1, "nothing left to repair: no install"


def _abandon_cleanup(lab: LabSim, scenario: str) -> tuple[str, str]:
    """Run `scenario`; right after it applies its first file, press Ctrl-C, and again during the cleanup."""
    first = len(lab.commands("kubectl"))
    running = start(lab, "scenario", scenario)
    deadline = time.monotonic() + 120
    while not any(c[0] == "apply" for c in kubectl_calls(lab, first)):
        assert running.poll() is None, running.communicate()
        assert time.monotonic() < deadline, "the scenario never applied anything"
        time.sleep(0.05)
    running.send_signal(signal.SIGINT)
    # Two signals sent at once arrive as one: the second goes once the first was counted.
    read_until(running, "Ctrl-C: stopping after the current command")
    running.send_signal(signal.SIGINT)
    out, err = running.communicate(timeout=120)
    assert running.returncode == 130, out + err
    assert "cleanup abandoned" in out and "saved as a pending cleanup" in out
    return out, err


def test_an_abandoned_cleanup_is_pending_until_the_next_scenario_or_reset_finishes_it(lab: LabSim) -> None:
    before = snapshot(lab)
    out, _ = _abandon_cleanup(lab, "egress-sni-broken")
    assert snapshot(lab) != before, out
    state = json.loads((lab_dir(lab) / "state.json").read_text())
    assert state["pending_cleanup"]["scenario"] == "egress-sni-broken"
    status = invoke(lab, "status")
    assert "pending cleanup: egress-sni-broken" in status.stdout

    following = invoke(lab, "scenario", "egress-sni", timeout=300)
    assert following.returncode == 0, following.stdout + following.stderr
    assert "finishing the cleanup that egress-sni-broken left pending" in following.stdout
    assert "✓ leak check" in following.stdout
    assert snapshot(lab) == before

    _abandon_cleanup(lab, "egress-sni-broken")
    asked = invoke(lab, "reset")
    assert asked.returncode == 2 and "pass --yes" in asked.stderr, "no terminal, no question: no change"
    reset = invoke(lab, "reset", "--yes", timeout=300)
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert "finish the cleanup that egress-sni-broken left pending" in reset.stdout
    assert snapshot(lab) == before
    assert json.loads((lab_dir(lab) / "state.json").read_text())["pending_cleanup"] is None
    assert "pending cleanup" not in invoke(lab, "status").stdout


def test_reset_after_keep_and_a_learners_own_changes_restores_how_up_left_the_lab(lab: LabSim) -> None:
    before = snapshot(lab)
    kept = invoke(lab, "scenario", "egress-sni", "--keep", timeout=300)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    entry = REPO / "manifests" / "egress-registry-only" / "serviceentry.yaml"
    pinned = json.dumps({"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": "k3s-w1"}}}}})
    policy = json.dumps({"data": {"mesh": "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n"}})
    for args in (
        ("apply", "-f", str(entry)),
        ("label", "namespace", "default", "study=notes"),
        ("patch", "deployment", "istio-egressgateway", "-n", "istio-system", "-p", pinned),
        ("patch", "configmap", "istio", "-n", "istio-system", "-p", policy),
        ("delete", "pod", "pod2", "-n", "default"),
    ):
        done = invoke(lab, "kubectl", "--", *args)
        assert done.returncode == 0, (args, done.stderr)

    reset = invoke(lab, "reset", "--yes", timeout=300)

    assert reset.returncode == 0, reset.stdout + reset.stderr
    out = reset.stdout
    assert "clean up what `--keep` left of egress-sni" in out
    assert "delete ServiceEntry default/google (up creates no Istio resource)" in out
    assert "remove label(s) study from Namespace default" in out
    assert "remove the nodeSelector {'kubernetes.io/hostname': 'k3s-w1'} of Deployment" in out
    assert "restore the installed gateways, istiod and the mesh config (ConfigMap istio-system/istio" in out
    assert "recreate the netshoot pods (pod1, pod2)" in out
    assert snapshot(lab) == before
    pods = {p["metadata"]["name"]: p for p in lab.objects("Pod", "default")}
    assert {"pod1", "pod2"} <= set(pods)
    assert "istio-proxy" in {c["name"] for c in pods["pod2"]["spec"]["containers"]}
    (default,) = [n for n in lab.objects("Namespace") if n["metadata"]["name"] == "default"]
    assert "study" not in default["metadata"]["labels"]

    again = invoke(lab, "reset", "--yes")
    assert again.returncode == 0 and "Nothing to reset" in again.stdout
