"""The study notes' broken config, the blog's egress-sni design and the official egress tasks."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from lab.analyzer import analyze_documents, analyze_paths

from .builders import CRDS, FIXTURES, codes, errors

TASKS = {  # fixture folder -> whether its mesh is REGISTRY_ONLY
    "egress-sni": False,
    "egress-gateway-http": False,
    "egress-gateway-https": False,
    "egress-registry-only": True,
    "egress-tls-origination": False,
}


def documents(folder: str) -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((FIXTURES / folder).glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_the_study_notes_config_reports_the_four_mistakes() -> None:
    found = {(f.code, f.kind, f.name) for f in errors(analyze_paths([FIXTURES / "study-notes-broken"]))}
    assert found == {
        ("KIA0203", "DestinationRule", "egressgateway-for-wikipedia"),
        ("LAB0101", "VirtualService", "direct-wikipedia-through-egress-gateway"),
        ("LAB0201", "Gateway", "istio-egressgateway"),
        ("LAB0401", "Service", "istio-egressgateway"),
        ("LAB0401", "Deployment", "istio-egressgateway"),
    }


def test_the_study_notes_virtual_service_is_bypassed_through_passthrough() -> None:
    [finding] = [f for f in analyze_paths([FIXTURES / "study-notes-broken"]) if f.code == "LAB0101"]
    assert "PassthroughCluster" in finding.message
    assert "ServiceEntry for *.wikipedia.org" in finding.hint


@pytest.mark.parametrize("folder", sorted(TASKS))
def test_working_designs_report_no_error(folder: str) -> None:
    assert errors(analyze_paths([FIXTURES / folder], registry_only=TASKS[folder])) == []


def test_egress_sni_warns_only_about_its_label_free_subset_with_the_reason() -> None:
    findings = analyze_paths([FIXTURES / "egress-sni"])
    assert {(f.code, f.severity) for f in findings} == {("KIA0209", "warning"), ("KIA1101", "info")}
    [subset] = [f for f in findings if f.code == "KIA0209"]
    assert "egress-gateway designs" in subset.message


def test_the_blog_verbatim_on_a_demo_cluster_trips_both_cautions() -> None:
    """The post's own labels and an EnvoyFilter without selector, as egress-reference.md warns."""
    docs = copy.deepcopy(documents("egress-sni"))
    for doc in docs:
        text = yaml.safe_dump(doc).replace("egressgateway-sni", "egressgateway")
        doc.clear()
        doc.update(yaml.safe_load(text))
        if doc["kind"] == "EnvoyFilter":
            del doc["spec"]["workloadSelector"]
    findings = analyze_documents(docs)
    assert {"LAB0202", "LAB0501"} <= codes(findings)
    [both] = [f for f in findings if f.code == "LAB0202"]
    assert "istio-system/istio-egressgateway" in both.message
    assert "istio-egress/istio-egressgateway" in both.message


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for crd in yaml.load_all(CRDS.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if not crd:
            continue
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
            api = f"{crd['spec']['group']}/{version['name']}"
            schemas[(api, crd["spec"]["names"]["kind"])] = _strict(copy.deepcopy(schema))
    return schemas


def _strict(schema: Any) -> Any:
    """Reject unknown fields, as the API server does with `kubectl apply --validate=strict`."""
    if isinstance(schema, dict):
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _strict(value)
    elif isinstance(schema, list):
        for value in schema:
            _strict(value)
    return schema


ALL_FIXTURES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", ALL_FIXTURES)
def test_fixtures_are_manifests_the_api_server_accepts(folder: str) -> None:
    for doc in documents(folder):
        schema = crd_schemas().get((doc["apiVersion"], doc["kind"]))
        if schema is not None:
            jsonschema.validate(doc["spec"], schema)
        else:
            kubernetes_validate.validate(doc, "1.30", strict=True)


def test_the_fixture_folders_are_the_ones_tested() -> None:
    assert set(ALL_FIXTURES) == {*TASKS, "study-notes-broken"}


def test_strict_schemas_reject_an_unknown_field() -> None:
    schema = crd_schemas()[("networking.istio.io/v1", "Gateway")]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"selector": {}, "servers": [], "bogus": 1}, schema)


def test_paths_can_be_files_or_folders() -> None:
    files = sorted(Path(FIXTURES / "egress-sni").glob("*.yaml"))
    assert analyze_paths(files) == analyze_paths([FIXTURES / "egress-sni"])
