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
from lab.errors import LabError, UsageError
from lab.scenario.model import Scenario, load_catalog

from .builders import FIXTURES

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


WIKI = """\
name: wiki
title: a scenario for the analyzer tests
teaches: what `invoke analyze --scenario` reads
mesh: {outboundTrafficPolicy: REGISTRY_ONLY}
steps:
  - apply: vs.yaml
  - exec: {command: [curl, "https://en.wikipedia.org/"]}
    expect: {exitCode: 0}
"""


@pytest.fixture
def lab_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with one scenario, `wiki`, whose mesh is REGISTRY_ONLY and which applies only
    vs.yaml of the two manifests in its folder."""
    (tmp_path / "manifests" / "wiki").mkdir(parents=True)
    (tmp_path / "manifests" / "lab").mkdir()
    (tmp_path / "scenarios").mkdir()
    broken = list(yaml.safe_load_all((FIXTURES / "study-notes-broken" / "egress.yaml").read_text()))
    [vs] = [doc for doc in broken if doc["kind"] == "VirtualService"]
    [rule] = [doc for doc in broken if doc["kind"] == "DestinationRule"]
    (tmp_path / "manifests" / "wiki" / "vs.yaml").write_text(yaml.safe_dump(vs))
    (tmp_path / "manifests" / "wiki" / "not-applied.yaml").write_text(yaml.safe_dump(rule))
    (tmp_path / "scenarios" / "wiki.yaml").write_text(WIKI)

    def catalog() -> list[Scenario]:
        return load_catalog(tmp_path / "scenarios", tmp_path / "manifests")

    monkeypatch.setattr("lab.analyzer.cli.load_catalog", catalog)
    return tmp_path


def test_a_scenario_is_analyzed_with_its_mesh_policy(
    lab_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_analyze([], "wiki", "json") == 1
    [finding] = [f for f in json.loads(capsys.readouterr().out) if f["code"] == "LAB0101"]
    assert "BlackHoleCluster" in finding["message"]


def test_a_scenario_is_analyzed_as_it_is_applied_not_its_whole_folder(
    lab_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_analyze([], "wiki", "json")
    kinds = {f["kind"] for f in json.loads(capsys.readouterr().out)}
    assert "VirtualService" in kinds and "DestinationRule" not in kinds


def test_a_mesh_setting_the_scenario_format_rejects_is_one_line(lab_root: Path) -> None:
    path = lab_root / "scenarios" / "wiki.yaml"
    path.write_text(
        WIKI.replace("{outboundTrafficPolicy: REGISTRY_ONLY}", "{outboundTrafficPolicy: {mode: X}}")
    )
    with pytest.raises(LabError) as error:
        run_explain([], "wiki", "pod1", "https://en.wikipedia.org/")
    assert error.value.message.startswith(f"{path}: mesh.outboundTrafficPolicy: ")


def test_a_scenario_without_a_policy_allows_any(lab_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (lab_root / "scenarios" / "wiki.yaml").write_text(
        WIKI.replace("mesh: {outboundTrafficPolicy: REGISTRY_ONLY}\n", "")
    )
    run_analyze([], "wiki", "json")
    assert "PassthroughCluster" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["nope", "lab", "../manifests/wiki", "Wiki"])
def test_an_unknown_scenario_lists_the_known_ones(lab_root: Path, name: str) -> None:
    with pytest.raises(LabError) as error:
        run_analyze([], name)
    assert str(error.value) == f"unknown scenario {name!r} (valid names: wiki)"


def test_a_scenario_file_that_is_not_yaml_is_one_line(lab_root: Path) -> None:
    (lab_root / "scenarios" / "wiki.yaml").write_text("mesh: [unclosed\n")
    with pytest.raises(LabError, match="not valid YAML"):
        run_analyze([], "wiki")


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


def test_explain_expect_answers_whether_the_request_takes_that_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = [str(FIXTURES / "study-notes-broken")]
    assert run_explain(folder, None, "pod1", "https://en.wikipedia.org/", expect="passthrough") == 0
    assert run_explain(folder, None, "pod1", "https://en.wikipedia.org/", expect="egress-gateway") == 1
    assert "expected egress-gateway, predicted passthrough" in capsys.readouterr().err


def test_explain_expect_refuses_a_verdict_trace_does_not_know() -> None:
    with pytest.raises(LabError, match=r"unknown verdict 'gateway'.*egress-gateway, passthrough"):
        run_explain([str(FIXTURES / "study-notes-broken")], None, "pod1", "https://x.org/", expect="gateway")


def test_the_invoke_task_passes_expect_through(monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks  # the thin task only parses arguments: it must hand --expect to run_explain

    seen: dict[str, object] = {}

    def fake(paths, scenario, source, to, fmt="text", expect=None):  # type: ignore[no-untyped-def]
        seen.update(to=to, expect=expect)
        return 0

    monkeypatch.setattr("lab.analyzer.cli.run_explain", fake)
    monkeypatch.setattr(tasks.cli, "run", lambda action, debug: action())
    tasks.explain.body(None, to="https://en.wikipedia.org/", expect="egress-gateway")
    assert seen == {"to": "https://en.wikipedia.org/", "expect": "egress-gateway"}


def test_the_terminal_table_prints_brackets_in_messages_as_they_are() -> None:
    from rich.console import Console

    from lab.analyzer.findings import Finding
    from lab.analyzer.render import findings_table

    console = Console(width=200, record=True, color_system=None)
    finding = Finding("LAB0401", "error", "Deployment", "ns", "d", "args are replaced by [proxy router]", "h")
    findings_table([finding], console)
    assert "args are replaced by [proxy router]" in console.export_text()
