"""Each check: a minimal manifest that triggers it, and the nearest one that does not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from lab.analyzer import analyze_paths
from lab.analyzer.engine import build_config
from lab.analyzer.loading import Document
from lab.analyzer.rulebook import RULES

from .builders import (
    DEMO_GATEWAY,
    REPO,
    analyze,
    codes,
    deployment,
    destination,
    destination_rule,
    envoy_filter,
    errors,
    gateway,
    k8s_service,
    namespace,
    server,
    service_entry,
    tls_rule,
    virtual_service,
)

Docs = list[dict[str, Any]]


@dataclass(frozen=True)
class Case:
    code: str
    severity: str
    trigger: Docs
    clean: Docs
    registry_only: bool = False

    def __str__(self) -> str:
        return f"{self.code}-{self.severity}"


def _through_demo_gateway(
    subset: str = "wikipedia", labels: dict | None = None, tls: str | None = None
) -> Docs:
    """A mesh tls route to the demo egress gateway and the rule that defines its subset."""
    rule: dict[str, Any] = {"name": subset}
    if labels:
        rule["labels"] = labels
    return [
        service_entry(),
        virtual_service(gateways=["mesh"], tls=[tls_rule(destination(DEMO_GATEWAY, subset))]),
        destination_rule(subsets=[rule], tls=tls),
    ]


def _mtls_gateway(mode: str | None, callers: str | None = "ISTIO_MUTUAL") -> Docs:
    """A Gateway server in `mode` on the demo gateway, and sidecars sending it `callers` TLS."""
    return [gateway(servers=[server(mode=mode)]), *_through_demo_gateway(tls=callers)]


def _quiet_gateway(name: str) -> dict[str, Any]:
    """A Gateway that needs no route of its own (it terminates mTLS for any host)."""
    return gateway(name, servers=[server(mode="ISTIO_MUTUAL", hosts=("*",))])


# The webhook refuses a VirtualService without routes ("http, tcp or tls must be provided in
# virtual service"), so cases that are about something else give it one.
TO_GATEWAY = [{"route": [{"destination": {"host": DEMO_GATEWAY}}]}]
WIKIPEDIA_VS = virtual_service(gateways=["mesh"], tls=[tls_rule(destination(DEMO_GATEWAY))])
PASSTHROUGH_ROUTE = virtual_service(
    "at-gateway", gateways=["istio-system/egress"], tls=[tls_rule(destination("www.wikipedia.org"))]
)
WWW = service_entry("www", hosts=("www.wikipedia.org",), resolution="DNS")
NONE_ROUTE = virtual_service(
    "at-gateway", gateways=["istio-system/egress"], tls=[tls_rule(destination("*.wikipedia.org", port=443))]
)
SNI_GATEWAY = [
    namespace("istio-egress"),
    deployment("sni-gateway", "istio-egress", {"istio": "egressgateway"}),
]

CASES = [
    Case("LAB0101", "error", [WIKIPEDIA_VS], [WIKIPEDIA_VS, service_entry()]),
    Case(
        "LAB0101",
        "warning",
        [
            virtual_service(
                hosts=("example.org",), http=[{"route": [{"destination": {"host": DEMO_GATEWAY}}]}]
            )
        ],
        [
            virtual_service(
                hosts=("example.org",), http=[{"route": [{"destination": {"host": DEMO_GATEWAY}}]}]
            ),
            service_entry(hosts=("example.org",), number=80, protocol="HTTP", resolution="DNS"),
        ],
    ),
    Case("KIA0202", "error", [destination_rule(host="nowhere.example.com")], [destination_rule()]),
    Case(
        "KIA0203",
        "error",
        _through_demo_gateway(labels={"version": "v1"}),
        _through_demo_gateway(labels={"istio": "egressgateway"}),
    ),
    Case(
        "KIA0203",
        "info",
        [destination_rule(subsets=[{"name": "v1", "labels": {"version": "v1"}}])],
        [destination_rule(subsets=[{"name": "v1", "labels": {"app": "istio-egressgateway"}}])],
    ),
    Case(
        "KIA0209",
        "warning",
        [destination_rule(subsets=[{"name": "all"}])],
        [destination_rule(subsets=[{"name": "some", "labels": {"istio": "egressgateway"}}])],
    ),
    Case(
        "KIA0209",
        "info",
        [destination_rule(subsets=[{"name": "all"}, {"name": "some", "labels": {"istio": "egressgateway"}}])],
        [destination_rule(subsets=[{"name": "some", "labels": {"istio": "egressgateway"}}])],
    ),
    Case(
        "KIA1107",
        "error",
        [service_entry(), virtual_service(gateways=["mesh"], tls=[tls_rule(destination(DEMO_GATEWAY, "x"))])],
        _through_demo_gateway("x"),
    ),
    Case(
        "KIA1101",
        "error",
        [service_entry(), virtual_service(tls=[tls_rule(destination("nowhere.example.com"))])],
        [service_entry(), virtual_service(tls=[tls_rule(destination(DEMO_GATEWAY))])],
    ),
    Case(
        "KIA1102",
        "error",
        [virtual_service(hosts=("www.wikipedia.org",), gateways=["istio-system/missing"], http=TO_GATEWAY)],
        [
            _quiet_gateway("missing"),
            virtual_service(
                hosts=("www.wikipedia.org",), gateways=["istio-system/missing"], http=TO_GATEWAY
            ),
        ],
    ),
    Case(
        "KIA1108",
        "error",
        [
            _quiet_gateway("egress"),
            virtual_service(
                hosts=("www.wikipedia.org",), gateways=["egress"], namespace="default", http=TO_GATEWAY
            ),
        ],
        [
            _quiet_gateway("egress"),
            virtual_service(
                hosts=("www.wikipedia.org",),
                gateways=["istio-system/egress"],
                namespace="default",
                http=TO_GATEWAY,
            ),
        ],
    ),
    Case(
        "KIA0302",
        "warning",
        [gateway(selector={"istio": "nothing-has-this"})],
        [gateway(selector={"istio": "egressgateway"}), PASSTHROUGH_ROUTE, WWW],
    ),
    Case(  # with routes bound to it, they apply on no proxy: an error
        "KIA0302",
        "error",
        [gateway(selector={"istio": "nothing-has-this"}), PASSTHROUGH_ROUTE, WWW],
        [gateway(selector={"istio": "egressgateway"}), PASSTHROUGH_ROUTE, WWW],
    ),
    Case(
        "LAB0202",
        "warning",
        [*SNI_GATEWAY, gateway(servers=[server(mode="ISTIO_MUTUAL")])],
        [
            *SNI_GATEWAY,
            gateway(selector={"app": "istio-egressgateway"}, servers=[server(mode="ISTIO_MUTUAL")]),
        ],
    ),
    Case(
        "IST0162",
        "warning",
        [gateway(servers=[server(9443, mode="ISTIO_MUTUAL")])],
        [gateway(servers=[server(443, mode="ISTIO_MUTUAL"), server(8443, mode="ISTIO_MUTUAL")])],
    ),
    Case("LAB0201", "error", [gateway()], [gateway(), PASSTHROUGH_ROUTE, WWW]),
    # istio/istio@1.23.2 pilot/pkg/networking/core/cluster.go convertResolution: "Gateways cannot
    # use passthrough clusters"; the NONE entry gives the gateway an empty EDS cluster. The fix is
    # the wildcard egress task's: route the gateway to one host with a DNS ServiceEntry.
    Case(
        "LAB0203",
        "error",
        [gateway(), service_entry(resolution="NONE"), NONE_ROUTE],
        [gateway(), service_entry(resolution="NONE"), PASSTHROUGH_ROUTE, WWW],
    ),
    Case(
        "LAB0301",
        "error",
        _mtls_gateway("ISTIO_MUTUAL", callers="SIMPLE"),
        _mtls_gateway("ISTIO_MUTUAL"),
    ),
    Case(
        "LAB0301",
        "warning",
        _mtls_gateway("ISTIO_MUTUAL", callers=None),
        _mtls_gateway("ISTIO_MUTUAL"),
    ),
    Case(
        "LAB0302",
        "error",
        [*_mtls_gateway("PASSTHROUGH"), PASSTHROUGH_ROUTE, WWW],
        [gateway(), *_through_demo_gateway(), PASSTHROUGH_ROUTE, WWW],
    ),
    Case(
        "LAB0401",
        "error",
        [k8s_service("istio-egressgateway", "istio-system", {"istio": "egressgateway"})],
        [namespace("istio-egress"), k8s_service("egressgateway", "istio-egress", {"istio": "egressgateway"})],
    ),
    Case(
        "LAB0401",
        "error",
        [deployment("istio-egressgateway", "istio-system", {"istio": "egressgateway"})],
        [namespace("istio-egress"), deployment("istio-egressgateway", "istio-egress", {"istio": "sni"})],
    ),
    # A warning: the design works; the filter also reaches the other gateways' tcp_proxy.
    Case("LAB0501", "warning", [envoy_filter()], [envoy_filter(selector={"istio": "egressgateway"})]),
    Case(
        "IST0151",
        "warning",
        [envoy_filter(operation="INSERT_BEFORE", selector={"istio": "egressgateway"})],
        [envoy_filter(operation="INSERT_BEFORE", selector={"istio": "egressgateway"}, priority=10)],
    ),
    Case("LAB0007", "warning", [destination_rule(), destination_rule()], [destination_rule()]),
    Case(
        "LAB0008",
        "error",
        [k8s_service("egressgateway", "istio-egress", {"istio": "sni"})],
        [namespace("istio-egress"), k8s_service("egressgateway", "istio-egress", {"istio": "sni"})],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_check_reports_its_trigger(case: Case) -> None:
    findings = analyze(*case.trigger, registry_only=case.registry_only)
    assert case.code in codes(findings, case.severity), [(f.code, f.severity) for f in findings]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_check_is_quiet_on_the_fixed_manifest(case: Case) -> None:
    findings = analyze(*case.clean, registry_only=case.registry_only)
    assert case.code not in codes(findings, case.severity)
    assert errors(findings) == []


def test_every_check_has_a_case() -> None:
    loader_codes = {"LAB0001", "LAB0002", "LAB0003", "LAB0004", "LAB0005", "LAB0006", "LAB0009", "LAB0010"}
    loader_codes.add("IST0106")  # the webhook's refusals: tests/analyzer/test_webhook.py
    assert {case.code for case in CASES} == {code for code, rule in RULES.items() if rule.check}
    assert {code for code, rule in RULES.items() if not rule.check} == loader_codes


def test_unlisted_hosts_are_refused_not_passed_through_when_registry_only() -> None:
    [allow_any] = [f for f in analyze(WIKIPEDIA_VS) if f.code == "LAB0101"]
    [registry_only] = [f for f in analyze(WIKIPEDIA_VS, registry_only=True) if f.code == "LAB0101"]
    assert "PassthroughCluster" in allow_any.message
    assert "BlackHoleCluster" in registry_only.message
    assert allow_any.hint == "add a ServiceEntry for *.wikipedia.org (port 443, protocol TLS)"


def test_a_subset_that_selects_nothing_names_the_pods_labels() -> None:
    [finding] = [f for f in analyze(*_through_demo_gateway(labels={"version": "v1"})) if f.code == "KIA0203"]
    assert "version=v1" in finding.message
    assert "app=istio-egressgateway,istio=egressgateway" in finding.message
    assert "not the client's" in finding.hint


def test_a_placeholder_destination_replaced_by_an_envoy_filter_is_only_info() -> None:
    at_gateway = virtual_service(
        "placeholder",
        hosts=("*",),
        gateways=["istio-system/egress"],
        tcp=[{"match": [{"port": 443}], "route": [{"destination": {"host": "dummy.local"}}]}],
    )
    mtls = gateway(servers=[server(mode="ISTIO_MUTUAL", hosts=("*",))])
    replaced = envoy_filter(selector={"istio": "egressgateway"})
    replaced["spec"]["configPatches"][0]["patch"]["value"]["typed_config"] = {"cluster": "sni_cluster"}
    without = analyze(mtls, at_gateway)
    with_filter = analyze(mtls, at_gateway, replaced)
    assert "KIA1101" in codes(without, "error")
    assert "KIA1101" in codes(with_filter, "info")
    assert "KIA1101" not in codes(with_filter, "error")


def test_a_root_filter_without_selector_names_the_gateways_it_hits() -> None:
    [finding] = [f for f in analyze(envoy_filter()) if f.code == "LAB0501"]
    assert "istio-system/istio-ingressgateway" in finding.message
    assert "istio-system/istio-egressgateway" in finding.message
    assert "default/pod1" not in finding.message  # context GATEWAY leaves sidecars alone


def test_a_root_tcp_proxy_merge_says_which_listeners_it_touches_today() -> None:
    """With a passthrough Gateway on the demo egress gateway, its 443 server has a tcp_proxy the
    filter rewrites; the ingress gateway has no TCP/TLS server yet (gateway.go builds tcp_proxy
    only for TCP, TLS and passthrough servers)."""
    [finding] = [f for f in analyze(envoy_filter(), gateway()) if f.code == "LAB0501"]
    assert finding.severity == "warning"
    assert "istio-system/istio-egressgateway (the tcp_proxy of istio-system/egress port 443)" in finding.message
    assert "istio-system/istio-ingressgateway (no TCP/TLS listener yet)" in finding.message
    assert "starts to hurt when a Gateway gives one of the others" in finding.message


def test_an_envoy_filter_outside_the_root_namespace_needs_no_selector() -> None:
    assert "LAB0501" not in codes(analyze(namespace("istio-egress"), envoy_filter(namespace="istio-egress")))


def test_a_passthrough_route_for_other_hosts_does_not_count() -> None:
    other = virtual_service(
        "at-gateway",
        hosts=("edition.cnn.com",),
        gateways=["istio-system/egress"],
        tls=[tls_rule(destination("edition.cnn.com"), sni=("edition.cnn.com",))],
    )
    cnn = service_entry("cnn", hosts=("edition.cnn.com",), resolution="DNS")
    assert "LAB0201" in codes(analyze(gateway(), other, cnn), "error")


def test_unqualified_gateway_names_resolve_in_the_virtual_service_namespace() -> None:
    same_namespace = virtual_service(hosts=("www.wikipedia.org",), gateways=["egress"])
    findings = analyze(gateway("egress"), same_namespace)
    assert not codes(findings) & {"KIA1102", "KIA1108"}


def test_the_deprecated_dotted_gateway_name_resolves() -> None:
    dotted = virtual_service(hosts=("www.wikipedia.org",), gateways=["egress.istio-system.svc.cluster.local"])
    assert not codes(analyze(gateway("egress"), dotted)) & {"KIA1102", "KIA1108"}


def test_a_gateway_port_may_be_the_service_port_or_its_target() -> None:
    for number in (80, 8080, 443, 8443):
        mtls = gateway(servers=[server(number, mode="ISTIO_MUTUAL", hosts=("*",))])
        assert "IST0162" not in codes(analyze(mtls)), number


def test_a_manifest_may_declare_its_own_gateway_and_service() -> None:
    own = [
        namespace("istio-egress"),
        k8s_service("egressgateway", "istio-egress", {"istio": "sni"}),
        deployment("egressgateway", "istio-egress", {"istio": "sni"}),
        gateway(selector={"istio": "sni"}, servers=[server(8443, mode="ISTIO_MUTUAL", hosts=("*",))]),
    ]
    assert codes(analyze(*own)) == set()


def test_re_declaring_the_installed_gateway_says_what_the_merge_really_does() -> None:
    """The study notes' partial Service and Deployment, applied client-side over objects
    `istioctl install` created server-side: a strategic merge that removes nothing
    (kubernetes/kubectl@release-1.30 pkg/cmd/apply/patcher.go)."""
    findings = analyze_paths([REPO / "manifests" / "egress-sni-broken" / "egressgateway.yaml"])
    [service] = [f for f in findings if (f.code, f.kind) == ("LAB0401", "Service")]
    [deployment_] = [f for f in findings if (f.code, f.kind) == ("LAB0401", "Deployment")]
    for finding in (service, deployment_):
        assert "strategic merge that removes nothing" in finding.message
        assert "overwrites" not in finding.message
    assert "keeps its ports (http2 80->8080, https 443->8443)" in service.message
    assert "changes none of them" in service.message
    assert "args are replaced by [proxy router]" in deployment_.message
    assert "gains containerPort 443" in deployment_.message


def test_the_model_keeps_the_installed_ports_after_a_partial_service() -> None:
    docs = [k8s_service("istio-egressgateway", "istio-system", {"istio": "egressgateway"}, 443, 443)]
    config, _ = build_config([Document(d, "test") for d in docs])
    [svc] = [s for s in config.services if s.name == "istio-egressgateway" and s.namespace == "istio-system"]
    assert [(p.number, p.target_port) for p in svc.ports] == [(80, 8080), (443, 443)]
    assert svc.selector == {"app": "istio-egressgateway", "istio": "egressgateway"}


@pytest.mark.parametrize(
    ("protocol", "tls", "section"),
    [
        ("HTTP", None, "http"),
        ("HTTPS", {"mode": "SIMPLE", "credentialName": "c"}, "http"),
        ("HTTPS", {"mode": "ISTIO_MUTUAL"}, "http"),
        ("HTTPS", {"mode": "PASSTHROUGH"}, "tls"),
        ("TLS", {"mode": "PASSTHROUGH"}, "tls"),
        ("TLS", {}, "tls"),  # no mode: PASSTHROUGH, the enum's zero value
        ("TLS", {"mode": "AUTO_PASSTHROUGH"}, "tls"),
        ("TLS", {"mode": "ISTIO_MUTUAL"}, "tcp"),
        ("TCP", None, "tcp"),
    ],
)
def test_which_virtual_service_section_routes_a_gateway_server(protocol: str, tls: Any, section: str) -> None:
    """istio/istio@1.23.2 pilot/pkg/networking/core/gateway.go buildGatewayListeners and
    createGatewayTCPFilterChainOpts."""
    from lab.analyzer.rules.gateways import route_kind

    found = {"port": {"number": 443, "name": "p", "protocol": protocol}, "hosts": ["*"]}
    if tls is not None:
        found["tls"] = tls
    assert route_kind(found) == section
