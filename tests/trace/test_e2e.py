"""End to end, egress `gateway`: the real CLI (`invoke trace ...`) against the lab simulator after one
real `invoke up`: a learner's own file, scenarios, --expect, --keep then a bare trace, and --logs on
the saved evidence giving the same verdict as the live run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.labsim import LabSim
from tests.scenario.e2e import invoke, kubectl_calls, ready_lab, snapshot

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# The study notes' config, as a learner would have saved it: the file is theirs, not a scenario.
STUDY_NOTES = "tests/analyzer/fixtures/study-notes-broken/egress.yaml"
MAIN_PAGE = "https://en.wikipedia.org/wiki/Main_Page"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabSim]:
    with ready_lab(tmp_path_factory.mktemp("labsim-trace"), egress="gateway") as sim:
        yield sim


def trace_json(lab: LabSim, *args: str) -> dict:
    result = invoke(lab, "trace", *args, "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def reports(lab: LabSim) -> Path:
    return lab.lab_home / "egress" / "reports"


def test_the_study_notes_file_traces_as_passthrough_as_explain_predicted_and_leaves_the_lab_as_it_was(
    lab: LabSim,
) -> None:
    before, first = snapshot(lab), len(lab.commands("kubectl"))

    result = invoke(lab, "trace", STUDY_NOTES, "--to", MAIN_PAGE)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "error KIA0203" in out, "the analyzer's findings are shown, and do not block"
    assert (
        "verdict: passthrough: default/pod1's sidecar sent it straight out through PassthroughCluster" in out
    )
    assert "explain predicted the same: passthrough" in out
    assert "1. client sidecar default/pod1" in out and "cluster PassthroughCluster" in out
    calls = kubectl_calls(lab, first)
    exec_call = next(c for c in calls if c[0] == "exec")
    assert exec_call[:7] == ["exec", "-n", "default", "pod1", "-c", "netshoot", "--"]
    gateway_reads = {c[3] for c in calls if c[0] == "logs" and c[2] != "default"}
    assert {"istio-egressgateway", "istio-ingressgateway"} <= {
        name.rsplit("-", 2)[0] for name in gateway_reads
    }
    assert "✓ leak check" in out
    assert snapshot(lab) == before


def test_egress_sni_goes_through_the_sni_gateway(lab: LabSim) -> None:
    before = snapshot(lab)

    found = trace_json(lab, "--scenario", "egress-sni", "--to", MAIN_PAGE)

    assert (found["to"], found["from"], found["verdict"]) == (MAIN_PAGE, "default/pod1", "egress-gateway")
    [gateway] = found["gateways"]
    assert gateway.startswith("istio-egress/istio-egressgateway-sni-")
    assert [h["cluster"] for h in found["hops"]] == [
        "outbound|443|wildcard|istio-egressgateway-sni.istio-egress.svc.cluster.local",
        "sni_cluster",
        "dynamic_forward_proxy_cluster",
    ]
    assert found["hops"][0]["sni"] == "en.wikipedia.org" and found["predicted"] == "egress-gateway"
    assert snapshot(lab) == before


def test_registry_only_refuses_an_unlisted_host_as_blackhole(lab: LabSim) -> None:
    found = trace_json(lab, "--scenario", "egress-registry-only", "--to", "https://edition.cnn.com/")

    assert found["verdict"] == "blackhole" and found["predicted"] == "blackhole"
    # the scenario's ServiceEntry (www.google.com:443) gives the sidecar a 0.0.0.0_443 listener,
    # whose tls_inspector reads every SNI on that port, the refused one's too
    assert found["hops"][0]["cluster"] == "BlackHoleCluster" and found["hops"][0]["sni"] == "edition.cnn.com"


def test_expect_sets_the_exit_code(lab: LabSim) -> None:
    wrong = invoke(lab, "trace", STUDY_NOTES, "--to", MAIN_PAGE, "--expect", "egress-gateway")
    right = invoke(lab, "trace", STUDY_NOTES, "--to", MAIN_PAGE, "--expect", "passthrough")

    assert wrong.returncode == 1 and "expected egress-gateway, observed passthrough" in wrong.stdout
    assert right.returncode == 0, right.stdout + right.stderr


def test_keep_then_a_bare_trace_traces_the_kept_config(lab: LabSim) -> None:
    before = snapshot(lab)

    kept = invoke(lab, "trace", "--scenario", "egress-sni", "--to", MAIN_PAGE, "--keep")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "kept (--keep)" in kept.stdout and snapshot(lab) != before
    bare = trace_json(lab, "--to", "https://de.wikipedia.org/")
    # The next trace with a config cleans up what --keep left before it applies its own.
    after = invoke(lab, "trace", STUDY_NOTES, "--to", MAIN_PAGE)

    assert bare["verdict"] == "egress-gateway" and bare["predicted"] is None
    assert "cleaning up what `--keep` left of trace" in after.stdout
    assert after.returncode == 0 and snapshot(lab) == before


def test_logs_on_the_evidence_of_a_live_run_gives_the_same_verdict(lab: LabSim) -> None:
    live = trace_json(lab, STUDY_NOTES, "--to", MAIN_PAGE)
    saved = max(reports(lab).glob("trace-*"))
    ip = live["hops"][0]["upstream_host"].rsplit(":", 1)[0]

    offline = trace_json(lab, "--logs", str(saved), "--to", MAIN_PAGE)
    (saved / "request.json").unlink()  # the IP curl connected to, saved with the logs
    with_ip = trace_json(lab, "--logs", str(saved), "--to", MAIN_PAGE, "--remote-ip", ip)
    without_ip = trace_json(lab, "--logs", str(saved), "--to", MAIN_PAGE)

    assert offline["verdict"] == with_ip["verdict"] == live["verdict"] == "passthrough"
    assert offline["hops"] == with_ip["hops"] == live["hops"]
    assert without_ip["verdict"] == "no-evidence", "no SNI on that line: only the IP links it"


def test_logs_on_a_scenario_evidence_folder_gives_the_same_verdict_as_the_live_run(lab: LabSim) -> None:
    ran = invoke(lab, "scenario", "egress-sni")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    [report] = sorted(reports(lab).glob("egress-sni-*"))[-1:]
    folder = report / "en-wikipedia-org-answers-pod1"

    offline = trace_json(lab, "--logs", str(folder), "--to", MAIN_PAGE)

    assert offline["verdict"] == "egress-gateway"
    assert offline["gateways"][0].startswith("istio-egress/istio-egressgateway-sni-")

    broken = invoke(lab, "scenario", "egress-sni-broken")
    assert broken.returncode == 0, broken.stdout + broken.stderr
    [report] = sorted(reports(lab).glob("egress-sni-broken-*"))[-1:]
    folder = report / "curl-en-wikipedia-org-works"
    # no SNI on that passthrough line: request.json, saved beside the logs, holds the connected IP
    assert trace_json(lab, "--logs", str(folder), "--to", MAIN_PAGE)["verdict"] == "passthrough"
