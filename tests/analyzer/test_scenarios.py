"""The project's own scenarios (manifests/ and scenarios/): the pre-flight check they get, on the
manifests each applies, with its mesh setting."""

from __future__ import annotations

import pytest
import yaml

from lab.analyzer import analyze_paths
from lab.analyzer.cli import run_explain
from lab.scenario.model import Scenario, load_catalog, select
from tests.scenario.helpers import SIX

from .builders import REPO

SCENARIOS = SIX  # written out once, in tests/scenario/helpers.py


def scenario(name: str) -> Scenario:
    [found] = select(load_catalog(), [name], run_all=False)
    return found


def expected_findings(name: str) -> set[str]:
    spec = yaml.safe_load((REPO / "scenarios" / f"{name}.yaml").read_text())
    return set(spec.get("expectedFindings") or [])


def test_the_scenarios_are_the_ones_checked_here() -> None:
    assert sorted(p.stem for p in (REPO / "scenarios").glob("*.yaml")) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_errors_are_exactly_the_lessons_the_scenario_expects(name: str) -> None:
    chosen = scenario(name)
    findings = analyze_paths(chosen.manifests, registry_only=chosen.registry_only)
    found = {f.code for f in findings if f.severity == "error"}
    assert found == expected_findings(name)


def test_the_broken_scenario_shows_the_four_mistakes() -> None:
    found = {
        (f.code, f.kind)
        for f in analyze_paths(scenario("egress-sni-broken").manifests)
        if f.severity == "error"
    }
    assert found == {
        ("KIA0203", "DestinationRule"),
        ("LAB0101", "VirtualService"),
        ("LAB0201", "Gateway"),
        ("LAB0401", "Service"),
        ("LAB0401", "Deployment"),
    }


def test_registry_only_comes_from_the_scenario_file() -> None:
    assert scenario("egress-registry-only").registry_only is True
    assert scenario("egress-sni").registry_only is False


def test_explain_the_broken_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_explain([], "egress-sni-broken", "pod1", "https://en.wikipedia.org/wiki/Main_Page") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "no ServiceEntry puts *.wikipedia.org in the registry" in out
    assert "result: leaves the mesh directly through PassthroughCluster" in out


def test_explain_the_sni_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_explain([], "egress-sni", "pod1", "https://en.wikipedia.org/wiki/Main_Page") == 0
    out = capsys.readouterr().out
    hops = [line.split("  ")[0] for line in out.splitlines() if line[:1].isdigit()]
    assert hops == ["1. client sidecar", "2. egress gateway", "3. internal listener", "4. upstream"]
    assert "outbound|443|wildcard|" in out and "over ISTIO_MUTUAL" in " ".join(out.split())
    assert "sni_listener" in out and "dynamic_forward_proxy_cluster" in out


def test_explain_registry_only_refuses_what_the_entry_does_not_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_explain([], "egress-registry-only", "pod1", "https://en.wikipedia.org/") == 1
    assert "BlackHoleCluster" in capsys.readouterr().out
    assert run_explain([], "egress-registry-only", "pod1", "https://www.google.com/") == 0
    assert "outbound|443||www.google.com" in capsys.readouterr().out
