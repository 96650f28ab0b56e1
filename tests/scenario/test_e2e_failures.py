"""End to end, egress `passthrough` (the study notes' situation: curl works, nothing goes through a
gateway): egress-sni must fail on its path, naming the observed verdict, clean up anyway, and clean up
on Ctrl-C too."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.labsim import LabSim

from .e2e import invoke, kubectl_calls, ready_lab, snapshot, start, verbs
from .helpers import SCENARIOS, THROUGH_A_GATEWAY

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabSim]:
    with ready_lab(tmp_path_factory.mktemp("labsim-passthrough"), egress="passthrough") as sim:
        yield sim


def test_egress_sni_fails_naming_the_observed_path_and_cleans_up(lab: LabSim) -> None:
    before, first = snapshot(lab), len(lab.commands("kubectl"))

    result = invoke(lab, "scenario", "egress-sni")

    assert result.returncode == 1
    out = result.stdout
    assert "✓ exit code is 0" in out, "curl works: that alone proves nothing"
    failing = [line for line in out.splitlines() if line.startswith("✗ egress-sni failed: ")]
    assert len(failing) == 1
    assert "path is egress-gateway via istio=egressgateway-sni in istio-egress" in failing[0]
    assert "received: observed passthrough: default/pod1's sidecar sent it straight out through" in out
    report = Path(failing[0].rsplit("evidence in ", 1)[1].rstrip("/"))
    files = {p.name for p in report.iterdir()}
    assert {"default.pod1.log", "istioctl-analyze.json", "client-clusters.json"} <= files
    assert any(name.startswith("istio-egress.istio-egressgateway-sni-") for name in files)
    assert any(
        name.startswith("gateway-istio-egress-") and name.endswith("-listeners.json") for name in files
    )
    assert "PassthroughCluster" in (report / "default.pod1.log").read_text()
    calls = kubectl_calls(lab, first)
    assert verbs(calls)[-2:] == ["logs", "delete"], "evidence, then cleanup"
    assert "✓ leak check" in out
    assert snapshot(lab) == before


def test_ctrl_c_mid_scenario_cleans_up_and_exits_130(lab: LabSim) -> None:
    before, first = snapshot(lab), len(lab.commands("kubectl"))
    # The first curl's path retries until its timeout here: a wide window for Ctrl-C.
    running = start(lab, "scenario", "egress-sni", LAB_STEP_TIMEOUT="60")
    deadline = time.monotonic() + 120
    while not any(c[0] == "logs" and "istio-egress" in c for c in kubectl_calls(lab, first)):
        assert running.poll() is None, running.communicate()
        assert time.monotonic() < deadline, "the scenario never read the SNI gateway's log"
        time.sleep(0.2)

    running.send_signal(signal.SIGINT)
    out, err = running.communicate(timeout=120)

    assert running.returncode == 130, out + err
    assert "Ctrl-C: stopping after the current command, then cleaning up" in out
    calls = kubectl_calls(lab, first)
    interrupted_at = max(i for i, c in enumerate(calls) if c[0] == "logs")
    assert [c[0] for c in calls[interrupted_at + 1 :]].count("delete") == 5, "every applied file deleted"
    assert snapshot(lab) == before


# The four of issue 14 (egress-sni: the test above; the HTTP and HTTPS tasks fail the same way, left
# out to keep the suite short: each failing run costs its step timeout plus the evidence).
@pytest.mark.parametrize("name", [n for n in THROUGH_A_GATEWAY if n not in SCENARIOS[:6]])
def test_each_gateway_scenario_fails_at_a_path_check_naming_passthrough(lab: LabSim, name: str) -> None:
    before = snapshot(lab)

    result = invoke(lab, "scenario", name)

    assert result.returncode == 1
    out = result.stdout
    assert len([line for line in out.splitlines() if line.startswith(f"✗ {name} failed: ")]) == 1
    # the first path check that fails says which way the request really went
    failed_path = re.search(r"✗ path is (\S+)[^\n]*\n\s+expected: [^\n]*\n\s+received: ([^\n]*)", out)
    assert failed_path, out[-3000:]
    assert failed_path[1] in ("egress-gateway", "direct")
    assert failed_path[2].startswith("observed passthrough: "), failed_path[2]
    assert "✓ leak check" in out
    assert snapshot(lab) == before
