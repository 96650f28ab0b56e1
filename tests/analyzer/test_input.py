"""Bad input gets a finding or a one-line LabError, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.analyzer import analyze_documents, analyze_paths
from lab.analyzer.rulebook import RULES, Rule
from lab.errors import LabError

from .builders import codes, obj

GOOD = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: istio-egress\n"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def test_a_missing_file_is_a_lab_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no such file or folder"):
        analyze_paths([tmp_path / "nope.yaml"])


def test_a_folder_without_manifests_is_a_lab_error(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "hello")
    with pytest.raises(LabError, match=r"no \.yaml or \.yml files"):
        analyze_paths([tmp_path])


@pytest.mark.parametrize(
    ("content", "code", "severity"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "LAB0002", "error"),
        (b"\xff\xfe\xfa not utf-8", "LAB0002", "error"),
        ("", "LAB0003", "warning"),
        ("# only a comment\n---\n", "LAB0003", "warning"),
        ("kind: [unclosed\n", "LAB0001", "error"),
        ("a: 1\n b: 2\n", "LAB0001", "error"),
        ("- just\n- a list\n", "LAB0004", "error"),
        ("apiVersion: v1\nkind: Service\n", "LAB0004", "error"),
        ("apiVersion: v1\nmetadata: {name: x}\n", "LAB0004", "error"),
        ("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n", "LAB0005", "warning"),
        (
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: x}\n",
            "LAB0005",
            "warning",
        ),
        ("apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: x}\n", "LAB0006", "error"),
        ("apiVersion: networking.istio.io/v1\nkind: EnvoyFilter\nmetadata: {name: x}\n", "LAB0006", "error"),
    ],
)
def test_bad_files_get_a_finding(tmp_path: Path, content: str | bytes, code: str, severity: str) -> None:
    findings = analyze_paths([write(tmp_path, "bad.yaml", content)])
    assert code in codes(findings, severity), findings


def test_a_parse_error_names_the_line(tmp_path: Path) -> None:
    [finding] = analyze_paths([write(tmp_path, "bad.yaml", GOOD + "---\nkind: [unclosed\n")])
    assert finding.code == "LAB0001"
    assert "line 7" in finding.message
    assert finding.kind == "File"
    assert finding.name.endswith("bad.yaml")


def test_good_files_are_still_read_next_to_bad_ones(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", b"\x00\x01")
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: istio-system}\n"
    write(tmp_path, "b.yaml", GOOD + "---\n" + service)
    assert codes(analyze_paths([tmp_path])) == {"LAB0002"}


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"hosts": "*.wikipedia.org"}, "spec.hosts must be a list"),
        ({"hosts": ["a.org"], "tls": [{"route": [{"destination": {"host": 7}}]}]}, "host must be a string"),
        ({"hosts": ["a.org"], "tls": {"route": []}}, "spec.tls must be a list"),
        ({}, "spec.hosts is required"),
    ],
)
def test_fields_of_the_wrong_type_are_reported_not_crashed_on(spec: dict, problem: str) -> None:
    [finding] = analyze_documents([obj("VirtualService", "vs", **spec)])
    assert finding.code == "LAB0009"
    assert problem in finding.message


def test_a_spec_that_is_not_a_mapping_is_reported() -> None:
    doc = obj("Gateway", "gw")
    doc["spec"] = ["not", "a", "mapping"]
    assert codes(analyze_documents([doc])) == {"LAB0009"}


def test_numbers_are_not_booleans() -> None:
    gateway = obj("Gateway", "gw", selector={"istio": "egressgateway"}, servers=[{"port": {"number": True}}])
    assert "LAB0009" in codes(analyze_documents([gateway]))


def test_a_kubectl_list_is_opened_into_its_items(tmp_path: Path) -> None:
    service = (
        "{apiVersion: v1, kind: Service, metadata: {name: istio-egressgateway, namespace: istio-system}}"
    )
    listing = f"apiVersion: v1\nkind: List\nitems:\n- {service}\n"
    assert codes(analyze_paths([write(tmp_path, "list.yaml", listing)])) == {"LAB0401"}


def test_documents_default_to_the_default_namespace() -> None:
    [finding] = analyze_documents([obj("Pod", "pod1", None, api="v1")])
    assert (finding.code, finding.namespace) == ("LAB0401", "default")


def test_odd_envoy_filter_values_do_not_break_the_checks() -> None:
    odd = obj(
        "EnvoyFilter",
        "odd",
        api="networking.istio.io/v1alpha3",
        workloadSelector={"labels": {"istio": "egressgateway"}},
        configPatches=[
            {
                "applyTo": "CLUSTER",
                "patch": {"operation": "ADD", "value": {"name": "c", "load_assignment": "x"}},
            },
            {
                "applyTo": "NETWORK_FILTER",
                "match": {"listener": "?"},
                "patch": {"operation": "MERGE", "value": {}},
            },
        ],
    )
    assert codes(analyze_documents([odd])) == set()


def test_a_crashing_check_is_reported_and_the_others_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(config: object, found: object) -> list:
        raise KeyError("surprise")

    monkeypatch.setitem(RULES, "ZZZ0001", Rule("ZZZ0001", "error", "always fails", broken))
    findings = analyze_documents([obj("Pod", "pod1", "default", api="v1")])
    assert codes(findings) == {"LAB0010", "LAB0401"}
    [crash] = [f for f in findings if f.code == "LAB0010"]
    assert "ZZZ0001 (always fails) failed: KeyError" in crash.message
