"""`invoke analyze` / `invoke explain` entry points: output formats, exit codes, scenarios."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from lab.analyzer import analyze_paths
from lab.analyzer.cli import run_analyze, run_explain
from lab.analyzer.render import findings_table
from lab.analyzer.scenarios import repo_root
from lab.errors import LabError, UsageError

from .builders import FIXTURES, REPO

BROKEN = str(FIXTURES / "study-notes-broken")
SNI = str(FIXTURES / "egress-sni")


def test_json_is_an_array_of_findings_with_exactly_the_documented_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_analyze([BROKEN], None, "json") == 1
    findings = json.loads(capsys.readouterr().out)
    assert isinstance(findings, list) and len(findings) == 5
    for finding in findings:
        assert set(finding) == {"code", "severity", "kind", "namespace", "name", "message", "hint"}
        assert finding["severity"] in ("error", "warning", "info")
        assert all(isinstance(value, str) for value in finding.values())


def test_json_of_a_clean_run_is_an_empty_array(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "ns.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: istio-egress\n")
    assert run_analyze([str(tmp_path)], None, "json") == 0
    assert json.loads(capsys.readouterr().out) == []


def test_exit_code_is_zero_when_only_warnings_and_info(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_analyze([SNI], None) == 0
    assert capsys.readouterr().out.strip().endswith("1 warning, 1 info in 2 resources")


def test_the_table_groups_findings_by_resource_with_a_fix_each(capsys: pytest.CaptureFixture[str]) -> None:
    run_analyze([BROKEN], None)
    out = capsys.readouterr().out
    headings = [line for line in out.splitlines() if line and not line.startswith(" ")]
    assert headings == [
        "Deployment istio-system/istio-egressgateway",
        "DestinationRule istio-system/egressgateway-for-wikipedia",
        "Gateway istio-system/istio-egressgateway",
        "Service istio-system/istio-egressgateway",
        "VirtualService istio-system/direct-wikipedia-through-egress-gateway",
        "5 errors in 5 resources",
    ]
    assert out.count("fix: ") == 5
    assert "  error    KIA0203  subset wildcard labels version=v1" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_the_terminal_table_shows_the_same_findings() -> None:
    findings = analyze_paths([Path(BROKEN)])
    screen = io.StringIO()
    findings_table(findings, Console(file=screen, width=160, color_system=None))
    text = screen.getvalue()
    for finding in findings:
        assert finding.code in text and finding.resource in text
    assert "5 errors in 5 resources" in text


def test_a_missing_path_is_one_line_not_a_traceback() -> None:
    with pytest.raises(LabError, match="no such file or folder"):
        run_analyze(["/nonexistent/manifests"], None)


def test_nothing_to_analyze_and_unknown_formats_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="nothing to analyze"):
        run_analyze([], None)
    with pytest.raises(UsageError, match="unknown format"):
        run_analyze([SNI], None, "yaml")


@pytest.fixture
def lab_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with one scenario, `wiki`, whose mesh is REGISTRY_ONLY."""
    (tmp_path / "manifests" / "wiki").mkdir(parents=True)
    (tmp_path / "manifests" / "lab").mkdir()
    (tmp_path / "scenarios").mkdir()
    broken = yaml.safe_load_all((FIXTURES / "study-notes-broken" / "egress.yaml").read_text())
    [vs] = [doc for doc in broken if doc["kind"] == "VirtualService"]
    (tmp_path / "manifests" / "wiki" / "vs.yaml").write_text(yaml.safe_dump(vs))
    spec = {"name": "wiki", "mesh": {"outboundTrafficPolicy": "REGISTRY_ONLY"}}
    (tmp_path / "scenarios" / "wiki.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("LAB_ROOT", str(tmp_path))
    return tmp_path


def test_a_scenario_is_analyzed_with_its_mesh_policy(
    lab_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_analyze([], "wiki", "json") == 1
    [finding] = [f for f in json.loads(capsys.readouterr().out) if f["code"] == "LAB0101"]
    assert "BlackHoleCluster" in finding["message"]


def test_the_mesh_policy_may_use_mesh_config_shape(
    lab_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {"mesh": {"outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"}}}
    (lab_root / "scenarios" / "wiki.yaml").write_text(yaml.safe_dump(spec))
    run_explain([], "wiki", "pod1", "https://en.wikipedia.org/")
    assert "BlackHoleCluster" in capsys.readouterr().out


def test_a_scenario_without_a_policy_allows_any(lab_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (lab_root / "scenarios" / "wiki.yaml").write_text("name: wiki\n")
    run_analyze([], "wiki", "json")
    assert "PassthroughCluster" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["nope", "lab", "../manifests/wiki", "Wiki"])
def test_an_unknown_scenario_lists_the_known_ones(lab_root: Path, name: str) -> None:
    with pytest.raises(LabError) as error:
        run_analyze([], name)
    assert str(error.value) == f"unknown scenario {name!r} (known scenarios: wiki)"


def test_a_scenario_file_that_is_not_yaml_is_one_line(lab_root: Path) -> None:
    (lab_root / "scenarios" / "wiki.yaml").write_text("mesh: [unclosed\n")
    with pytest.raises(LabError, match="not valid YAML"):
        run_analyze([], "wiki")


def test_without_lab_root_the_checkout_is_the_package_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAB_ROOT", raising=False)
    assert repo_root() == REPO


def test_explain_exits_one_when_the_request_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = (FIXTURES / "study-notes-broken" / "egress.yaml").read_text()
    entry = (
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: w, namespace: default}\n"
    )
    entry += "spec: {hosts: ['*.wikipedia.org'], ports: [{number: 443, name: tls, protocol: TLS}]}\n"
    (tmp_path / "all.yaml").write_text(broken + "---\n" + entry)
    assert run_explain([str(tmp_path)], None, "pod1", "https://en.wikipedia.org/") == 1
    assert "no healthy upstream" in capsys.readouterr().out


def test_explain_notes_documents_it_had_to_leave_out(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "bad.yaml").write_text("kind: [unclosed\n")
    run_explain([str(tmp_path)], None, "pod1", "https://en.wikipedia.org/")
    assert "1 document(s) left out" in capsys.readouterr().err
