"""The study notes' broken config, the blog's egress-sni design and the official egress tasks."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from lab.analyzer import analyze_documents, analyze_paths, cli
from lab.verdicts import BLACKHOLE, DIRECT, EGRESS_GATEWAY, PASSTHROUGH, PREDICTED

from .builders import CRDS, FIXTURES, codes, errors

# Istio's own egress tasks (release-1.23 pages) and the 2023 egress-SNI blog, applied as the docs
# apply them; each fixture file names its source. Folder -> (mesh REGISTRY_ONLY?, requests with
# the path the docs show for them, as lab.verdicts names).
TASKS: dict[str, tuple[bool, list[tuple[str, str]]]] = {
    "egress-sni": (False, [("https://en.wikipedia.org/wiki/Main_Page", EGRESS_GATEWAY)]),
    "egress-gateway-http": (False, [("http://edition.cnn.com/politics", EGRESS_GATEWAY)]),
    "egress-gateway-https": (False, [("https://edition.cnn.com/politics", EGRESS_GATEWAY)]),
    "egress-registry-only": (True, [("https://en.wikipedia.org/", EGRESS_GATEWAY)]),
    "egress-tls-origination": (False, [("http://edition.cnn.com/politics", DIRECT)]),
    "egress-control": (
        True,
        [
            ("http://httpbin.org/headers", DIRECT),
            ("https://www.google.com/", DIRECT),
            ("https://edition.cnn.com/", BLACKHOLE),  # the page's "exit code 35" before the entries
        ],
    ),
    "egress-gateway-tls-origination": (False, [("http://edition.cnn.com/politics", EGRESS_GATEWAY)]),
    "egress-wildcard-hosts": (
        True,
        [
            ("https://en.wikipedia.org/wiki/Main_Page", EGRESS_GATEWAY),
            ("https://de.wikipedia.org/wiki/Wikipedia:Hauptseite", EGRESS_GATEWAY),
        ],
    ),
    "egress-kubernetes-services": (
        False,
        [
            # An ExternalName Service is an alias in 1.23 (ENABLE_EXTERNAL_NAME_ALIAS, on by default,
            # istio/istio@1.23.2:pilot/pkg/features/pilot.go): no cluster of its own, and httpbin.org
            # is not in the registry, so the sidecar passes it through. The page's sample output
            # (an x-envoy-decorator-operation for my-httpbin) predates the alias default.
            ("http://my-httpbin.default.svc.cluster.local/headers", PASSTHROUGH),
            ("https://my-wikipedia.default.svc.cluster.local/wiki/Main_Page", DIRECT),
        ],
    ),
    "egress-http-proxy": (False, [("http://10.42.0.50:3128/", DIRECT)]),
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
    assert errors(analyze_paths([FIXTURES / folder], registry_only=TASKS[folder][0])) == []


REQUESTS = [(folder, url, verdict) for folder, (_, asks) in sorted(TASKS.items()) for url, verdict in asks]


@pytest.mark.parametrize(("folder", "url", "verdict"), REQUESTS)
def test_explain_expect_gives_the_docs_path(
    folder: str, url: str, verdict: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "targets", lambda paths, scenario: ([FIXTURES / folder], TASKS[folder][0]))
    assert cli.run_explain([], None, "pod1", url, expect=verdict) == 0, capsys.readouterr().out
    assert f"verdict: {verdict}" in capsys.readouterr().out
    others = [v for v in PREDICTED if v != verdict]
    assert cli.run_explain([], None, "pod1", url, expect=others[0]) == 1
    assert f"expected {others[0]}, predicted {verdict}" in capsys.readouterr().err


@pytest.mark.parametrize("resolution", ["NONE", "DNS"])
def test_the_completed_study_notes_design_is_an_error_and_reaches_nothing_through_the_gateway(
    resolution: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = FIXTURES / f"study-notes-completed-{resolution.lower()}"
    assert cli.run_analyze([str(folder)], None, "json") == 1
    found = {f["code"] for f in json.loads(capsys.readouterr().out) if f["severity"] == "error"}
    assert found == ({"LAB0203"} if resolution == "NONE" else {"IST0106", "LAB0101", "KIA1101"})
    code = cli.run_explain([str(folder)], None, "pod1", "https://en.wikipedia.org/wiki/Main_Page")
    out = " ".join(capsys.readouterr().out.split())
    assert "through the egress gateway" not in out.split("result:")[1]
    if resolution == "NONE":
        assert code == 1
        assert "result: dropped by the gateway: outbound|443||*.wikipedia.org has no endpoints" in out
        assert "curl exits 35" in out and "verdict: dropped" in out
    else:
        assert "verdict: passthrough" in out  # the ServiceEntry was refused: ALLOW_ANY lets it out


def test_the_dns_variant_is_refused_in_the_webhooks_words() -> None:
    [refused] = [f for f in analyze_paths([FIXTURES / "study-notes-completed-dns"]) if f.code == "IST0106"]
    assert (refused.kind, refused.name) == ("ServiceEntry", "wikipedia")
    assert "hosts must be FQDN if no endpoints are provided for resolution mode DNS" in refused.message


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
    assert set(ALL_FIXTURES) == {
        *TASKS,
        "study-notes-broken",
        "study-notes-completed-none",
        "study-notes-completed-dns",
    }


def test_strict_schemas_reject_an_unknown_field() -> None:
    schema = crd_schemas()[("networking.istio.io/v1", "Gateway")]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"selector": {}, "servers": [], "bogus": 1}, schema)


def test_paths_can_be_files_or_folders() -> None:
    files = sorted(Path(FIXTURES / "egress-sni").glob("*.yaml"))
    assert analyze_paths(files) == analyze_paths([FIXTURES / "egress-sni"])


# The clusters the docs' own log and `pilot-agent request GET clusters` outputs show.
DOCS_CLUSTERS = [
    ("egress-control", "http://httpbin.org/headers", "outbound|80||httpbin.org"),
    ("egress-control", "https://www.google.com/", "outbound|443||www.google.com"),
    ("egress-wildcard-hosts", "https://en.wikipedia.org/wiki/Main_Page", "outbound|443||www.wikipedia.org"),
    ("egress-http-proxy", "http://10.42.0.50:3128/", "outbound|3128||my-company-proxy.com"),
    ("egress-gateway-http", "http://edition.cnn.com/politics", "outbound|80||edition.cnn.com"),
    ("egress-gateway-https", "https://edition.cnn.com/politics", "outbound|443||edition.cnn.com"),
]


@pytest.mark.parametrize(("folder", "url", "cluster"), DOCS_CLUSTERS)
def test_explain_names_the_cluster_the_docs_log_shows(
    folder: str, url: str, cluster: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "targets", lambda paths, scenario: ([FIXTURES / folder], TASKS[folder][0]))
    cli.run_explain([], None, "pod1", url)
    assert cluster in capsys.readouterr().out
