"""`explain`: the hop-by-hop path of a request, as text and as Graphviz."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from lab.analyzer.cli import run_explain
from lab.analyzer.engine import build_config
from lab.analyzer.explain import explain
from lab.analyzer.loading import Document
from lab.analyzer.path import Path
from lab.errors import LabError

from .builders import FIXTURES, deployment, namespace, service_entry

WIKIPEDIA = "https://en.wikipedia.org/wiki/Main_Page"


def fixture_docs(folder: str) -> list[dict[str, Any]]:
    return [
        d for p in sorted((FIXTURES / folder).glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d
    ]


def trace(
    docs: list[dict[str, Any]], url: str = WIKIPEDIA, source: str = "pod1", registry_only: bool = False
) -> Path:
    config, _ = build_config([Document(d, "test") for d in docs], registry_only=registry_only)
    return explain(config, source, url)


def explained(
    capsys: pytest.CaptureFixture[str], folder: str, fmt: str = "text", **kwargs: Any
) -> tuple[int, str]:
    code = run_explain(
        [str(FIXTURES / folder)], None, kwargs.get("source", "pod1"), kwargs.get("to", WIKIPEDIA), fmt
    )
    return code, capsys.readouterr().out


def in_order(text: str, *parts: str) -> bool:
    """Whether the parts appear in this order, ignoring line wrapping."""
    flat = " ".join(text.split())
    positions = [flat.find(" ".join(p.split())) for p in parts]
    return -1 not in positions and positions == sorted(positions)


def test_the_study_notes_request_leaves_through_passthrough(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explained(capsys, "study-notes-broken")
    assert code == 0
    assert in_order(
        out,
        "1. client sidecar  default/pod1",
        "no ServiceEntry puts *.wikipedia.org in the registry",
        "VirtualService istio-system/direct-wikipedia-through-egress-gateway is not applied",
        "PassthroughCluster",
        "by mesh outboundTrafficPolicy ALLOW_ANY",
        "2. upstream  en.wikipedia.org:443",
        "result: leaves the mesh directly through PassthroughCluster",
    )
    assert "egress gateway" not in out.split("result:")[0]


def test_egress_sni_goes_sidecar_gateway_forward_proxy_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = explained(capsys, "egress-sni")
    assert code == 0
    assert in_order(
        out,
        "1. client sidecar  default/pod1",
        "0.0.0.0_443, filter chain for SNI *.wikipedia.org",
        "outbound|443|wildcard|egressgateway.istio-egress.svc.cluster.local over ISTIO_MUTUAL",
        "by DestinationRule istio-system/egressgateway",
        "istio-egress/istio-egressgateway port 8443",
        "2. egress gateway  istio-egress/istio-egressgateway",
        "0.0.0.0_8443, server TLS ISTIO_MUTUAL",
        "terminates the mesh mTLS",
        "sni_cluster",
        "by EnvoyFilter istio-system/sni-magic",
        "3. internal listener  sni_listener",
        "server_names *.wikipedia.org",
        "sni_dynamic_forward_proxy port 443",
        "dynamic_forward_proxy_cluster",
        "4. upstream  en.wikipedia.org:443",
        "result: reaches en.wikipedia.org:443 through the egress gateway istio-egress/istio-egressgateway",
    )


DOT_LINE = re.compile(r"^\s+(hop\d+|result) \[[a-z]+=.*\];$|^\s+(hop\d+) -> (hop\d+|result)( \[.*\])?;$")


@pytest.mark.parametrize(("folder", "hops"), [("study-notes-broken", 2), ("egress-sni", 4)])
def test_dot_draws_the_same_path(capsys: pytest.CaptureFixture[str], folder: str, hops: int) -> None:
    _, text = explained(capsys, folder)
    code, dot = explained(capsys, folder, "dot")
    assert code == 0
    lines = dot.strip().splitlines()
    assert lines[0] == "digraph path {" and lines[-1] == "}"
    body = [line for line in lines[1:-1] if not line.lstrip().startswith(("rankdir", "node ", "label="))]
    assert all(DOT_LINE.match(line) for line in body), body
    edges = [line for line in body if re.match(r"^\s+hop\d+ -> ", line)]
    assert len(edges) == hops  # hop to hop, and the last to the result
    assert all(line.count('"') % 2 == 0 and line.count('\\"') == 0 for line in body)
    clusters = re.findall(r"cluster\s+(\S+)", text)
    for cluster in clusters:
        assert cluster in dot


def test_dot_edges_are_named_by_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    _, dot = explained(capsys, "egress-sni", "dot")
    assert 'hop2 -> hop3 [label="sni_cluster"];' in dot
    assert 'hop3 -> hop4 [label="dynamic_forward_proxy_cluster"];' in dot


def test_every_wikipedia_language_takes_the_gateway() -> None:
    path = trace(fixture_docs("egress-sni"), "https://de.wikipedia.org/wiki/Wikipedia:Hauptseite")
    assert [h.proxy for h in path.hops] == [
        "client sidecar",
        "egress gateway",
        "internal listener",
        "upstream",
    ]
    assert path.hops[-1].where == "de.wikipedia.org:443"


def test_a_host_outside_the_wildcard_bypasses_the_gateway() -> None:
    path = trace(fixture_docs("egress-sni"), "https://cloud.ibm.com/login")
    assert [s.value for s in path.hops[0].steps][-1] == "PassthroughCluster"


def test_registry_only_refuses_unlisted_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    path = trace(fixture_docs("egress-registry-only"), "https://www.google.com/", registry_only=True)
    assert path.hops[0].steps[-1].value == "BlackHoleCluster"
    assert not path.reached
    assert "curl exits 35" in path.outcome


def test_adding_only_a_service_entry_to_the_study_notes_fails_at_the_subset() -> None:
    path = trace([*fixture_docs("study-notes-broken"), service_entry()])
    endpoints = [s for s in path.hops[0].steps if s.what == "endpoints"]
    assert endpoints[0].value == "none"
    assert "version=v1" in endpoints[0].why and "KIA0203" in endpoints[0].why
    assert not path.reached


def test_with_the_subset_fixed_the_passthrough_server_has_no_route() -> None:
    docs = [*fixture_docs("study-notes-broken"), service_entry()]
    for doc in docs:
        if doc["kind"] == "DestinationRule":
            del doc["spec"]["subsets"][0]["labels"]
    path = trace(docs)
    assert path.hops[1].proxy == "egress gateway"
    assert "LAB0201" in path.hops[1].steps[-1].why
    assert path.outcome.startswith("dropped by the gateway: no route for this traffic")
    assert "curl exits 35" in path.outcome and path.verdict == "dropped"


@pytest.mark.parametrize(
    ("folder", "url", "last", "through_gateway"),
    [
        ("egress-gateway-http", "http://edition.cnn.com/politics", "edition.cnn.com:80", True),
        ("egress-gateway-https", "https://edition.cnn.com/politics", "edition.cnn.com:443", True),
        ("egress-registry-only", "https://en.wikipedia.org/", "www.wikipedia.org:443", True),
        ("egress-tls-origination", "http://edition.cnn.com/politics", "edition.cnn.com:443", False),
    ],
)
def test_the_official_tasks(folder: str, url: str, last: str, through_gateway: bool) -> None:
    path = trace(fixture_docs(folder), url, registry_only=folder == "egress-registry-only")
    assert path.reached
    assert path.hops[-1].where == last
    assert ("egress gateway" in [h.proxy for h in path.hops]) is through_gateway


def test_tls_origination_says_the_sidecar_originates_tls() -> None:
    path = trace(fixture_docs("egress-tls-origination"), "http://edition.cnn.com/politics")
    assert "outbound|443||edition.cnn.com over SIMPLE" in [s.value for s in path.hops[0].steps]
    assert "originates TLS (SIMPLE)" in path.hops[-1].steps[-1].why


def test_a_pod_without_sidecar_is_outside_the_mesh() -> None:
    plain = [namespace("plain"), deployment("client", "plain", {"app": "client"}, gateway=False)]
    path = trace(plain, source="plain/client")
    assert path.hops[0].proxy == "client without sidecar"


@pytest.mark.parametrize(
    "url", ["ftp://example.org/", "en.wikipedia.org", "https://host:port/", "https://[::1/"]
)
def test_a_bad_url_is_a_lab_error(url: str) -> None:
    with pytest.raises(LabError, match="bad URL"):
        trace([], url)


def test_an_unknown_pod_is_a_lab_error_that_lists_the_clients() -> None:
    with pytest.raises(LabError) as error:
        trace([], source="pod3")
    assert "default/pod1" in str(error.value)


def test_an_unknown_format_is_a_lab_error() -> None:
    with pytest.raises(LabError, match="unknown format"):
        run_explain([str(FIXTURES / "egress-sni")], None, "pod1", WIKIPEDIA, "svg")
