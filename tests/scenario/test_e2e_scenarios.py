"""End to end, egress `gateway`: the real CLI (`invoke scenario ...`) against the lab simulator
after one real `invoke up`. Each scenario exits as described and leaves the lab as it found it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.labsim import LabSim

from .e2e import RUN_ALL, invoke, kubectl_calls, ready_lab, snapshot, verbs
from .helpers import SIX, expect_entries, scenario_files

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabSim]:
    with ready_lab(tmp_path_factory.mktemp("labsim-gateway"), egress="gateway") as sim:
        yield sim


def test_scenarios_lists_the_ten_with_titles(lab: LabSim) -> None:
    listing = invoke(lab, "scenarios")
    assert listing.returncode == 0, listing.stderr
    rows = [line.split(None, 1) for line in listing.stdout.splitlines()]
    files = scenario_files()
    assert len(SIX) == 10
    assert rows == [[name, files[name]["title"]] for name in SIX]


def test_an_unknown_scenario_is_one_line_with_the_valid_names(lab: LabSim) -> None:
    result = invoke(lab, "scenario", "egress-snii")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: unknown scenario 'egress-snii' → valid names: " + ", ".join(SIX)
    ]


def test_egress_sni_passes_applies_checks_and_cleans_up_in_order(lab: LabSim) -> None:
    before, first = snapshot(lab), len(lab.commands("kubectl"))

    result = invoke(lab, "scenario", "egress-sni")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ egress-sni passed" in result.stdout
    calls = kubectl_calls(lab, first)
    assert verbs(calls) == ["apply", "exec", "logs", "exec", "logs", "exec", "logs", "delete"]
    applied = [c for c in calls if c[0] == "apply"]
    assert [c for c in calls if c[0] == "delete"] == [
        ["delete", "-f", "-", "--ignore-not-found", "--wait=true"]
    ] * len(applied)
    exec_call = next(c for c in calls if c[0] == "exec")
    assert exec_call[:6] == ["exec", "-n", "default", "pod1", "-c", "netshoot"]
    gateway_logs = next(c for c in calls if c[0] == "logs" and "istio=egressgateway-sni" in c)
    assert "--tail=-1" in gateway_logs
    # read from k3s-s's clock (`date` on the node, not a simulated tool, so not in the log) after
    # the command before the exec step returned and before the curl started; sent as whole seconds
    # (all kubectl sends), a second earlier, with --timestamps to keep the lines from the start on
    log = lab.commands()
    at = next(i for i, e in enumerate(log) if e["tool"] == "kubectl" and e["argv"][1:] == gateway_logs)
    is_exec = [e["tool"] == "kubectl" and e["argv"][1:2] == ["exec"] for e in log]
    curl = max(i for i in range(at) if is_exec[i])
    while is_exec[curl - 1]:  # a retried curl: the clock was read before the first attempt
        curl -= 1
    prior = curl - 1
    while log[prior]["argv"][1:4] == ["get", "pods", "-A"]:  # the trace's look for gateway proxies
        prior -= 1
    [since] = [a.split("=", 1)[1] for a in gateway_logs if a.startswith("--since-time=")]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", since) and "--timestamps" in gateway_logs
    read_at = datetime.fromisoformat(since.replace("Z", "+00:00")).timestamp()
    assert log[prior]["ended"] - 2 < read_at <= log[curl]["ts"] - 1
    assert "✓ leak check" in result.stdout
    assert snapshot(lab) == before


def test_every_scenario_exits_0_with_one_junit_testcase_per_assertion(lab: LabSim, tmp_path: Path) -> None:
    before, first = snapshot(lab), len(lab.commands("kubectl"))
    junit = tmp_path / "scenarios.xml"

    result = invoke(lab, *RUN_ALL, "--junit", str(junit), timeout=600)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "10 of 10 scenarios passed" in result.stdout
    suites = ET.parse(junit).getroot().findall("testsuite")
    files = scenario_files()
    assert [s.get("name") for s in suites] == SIX
    for suite in suites:
        cases = suite.findall("testcase")
        assert len(cases) == expect_entries(files[suite.get("name")]) + 1, "each check, plus the leak check"
        assert not suite.findall("testcase/failure") and not suite.findall("testcase/error")
    assert snapshot(lab) == before, (
        "gateway Service/Deployment, mesh config, namespaces and Istio config as before"
    )
    calls = kubectl_calls(lab, first)
    # egress-sni-broken saved the installed gateway before merging the notes' into it, then patched it back
    saved = calls.index(
        ["get", "service,deployment", "istio-egressgateway", "-n", "istio-system", "-o", "json"]
    )
    assert [c[1] for c in calls[saved:] if c[0] == "patch" and c[2] == "istio-egressgateway"][:2] == [
        "service",
        "deployment",
    ]
    # egress-registry-only set REGISTRY_ONLY, then put the original mesh config back
    mesh = [c[-1] for c in calls if c[:3] == ["patch", "configmap", "istio"]]
    assert len(mesh) == 2 and "REGISTRY_ONLY" in mesh[0] and "REGISTRY_ONLY" not in mesh[1]
    assert "why:" in result.stdout


# nginx's `combined` line as the simulated testpc writes it (tests/labsim/webserver.py)
_COMBINED = re.compile(r'^(\S+) - - \[[^]]+\] "GET /\?via=(\S+) HTTP/1\.1" 200 (\d+) "-" "curl/8\.7\.1"$')


def test_testpc_logs_pod1s_node_then_the_gateways_and_the_gateway_goes_back(lab: LabSim) -> None:
    before, first = snapshot(lab), len(lab.commands("kubectl"))
    access_log = lab.layout.node_root("testpc") / "var/log/nginx/access.log"
    seen = len(access_log.read_text().splitlines()) if access_log.exists() else 0

    result = invoke(lab, "scenario", "egress-testpc-source-ip")

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    lines = access_log.read_text().splitlines()[seen:]
    matched = [_COMBINED.match(line) for line in lines]
    assert len(lines) == 2 and all(matched), lines
    source = {m[2]: m[1] for m in matched if m}
    node_ip = {n: (lab.layout.instance(n) or {})["private_ip"] for n in ("k3s-s", "k3s-w1", "k3s-w2")}
    [pod1] = [p for p in lab.objects("Pod", "default") if p["metadata"]["name"] == "pod1"]
    assert source["pod1-sidecar"] == node_ip[pod1["spec"]["nodeName"]]
    assert source["egress-gateway"] in node_ip.values()
    assert source["egress-gateway"] != source["pod1-sidecar"], (
        "the anti-affinity kept the gateway off pod1's node"
    )
    calls = kubectl_calls(lab, first)
    patches = [c[-1] for c in calls if c[:3] == ["patch", "deployment", "istio-egressgateway"]]
    assert len(patches) == 2 and "podAntiAffinity" in patches[0] and '"affinity": null' in patches[1]
    assert [c[2] for c in calls if c[:2] == ["rollout", "status"]] == ["deployment/istio-egressgateway"] * 2
    assert snapshot(lab) == before, "the gateway's Deployment is back as installed"
