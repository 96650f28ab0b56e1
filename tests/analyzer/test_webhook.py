"""IST0106: what Istio 1.23.2's validating webhook refuses, each with its corrected twin.

The expected texts are the Go format strings of istio/istio@1.23.2:pkg/config/validation/
validation.go (and agent/validation.go for host names), filled in; `kubectl apply` prints them
after `admission webhook "validation.istio.io" denied the request: configuration is invalid:`.
"""

from __future__ import annotations

from typing import Any

import pytest

from lab.analyzer import predict

from .builders import (
    analyze,
    destination,
    envoy_filter,
    gateway,
    server,
    service_entry,
    tls_rule,
    virtual_service,
)

HTTP_ROUTE = [{"route": [{"destination": {"host": "www.wikipedia.org"}}]}]

# (what the webhook says, the refused document, its corrected twin)
CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (  # ValidateServiceEntry, resolution DNS without endpoints
        "hosts must be FQDN if no endpoints are provided for resolution mode DNS",
        service_entry(resolution="DNS"),
        service_entry(hosts=("www.wikipedia.org",), resolution="DNS"),
    ),
    (  # ValidateServiceEntry: the full wildcard
        "invalid host *",
        service_entry(hosts=("*",)),
        service_entry(hosts=("*.wikipedia.org",)),
    ),
    (  # ValidateServiceEntry, resolution NONE
        "no endpoints should be provided for resolution type none",
        service_entry(hosts=("www.wikipedia.org",), resolution="NONE", endpoints=[{"address": "10.0.0.1"}]),
        service_entry(hosts=("www.wikipedia.org",), resolution="STATIC", endpoints=[{"address": "10.0.0.1"}]),
    ),
    (  # agent.ValidateWildcardDomain checks the labels after the first with ValidateDNS1123Labels,
        # which names that rest, not the whole host.
        'domain name "*.org" invalid (label "*" invalid)',
        service_entry(hosts=("en.*.org",)),
        service_entry(hosts=("*.wikipedia.org",)),
    ),
    (  # validateServer: TLS and HTTPS servers need tls settings
        "server must have TLS settings for HTTPS/TLS protocols",
        gateway(servers=[server(mode=None)]),
        gateway(servers=[server(mode="PASSTHROUGH")]),
    ),
    (  # validateTLSOptions
        "SIMPLE TLS requires a server certificate",
        gateway(servers=[server(protocol="HTTPS", mode="SIMPLE")]),
        gateway(servers=[{**server(protocol="HTTPS"), "tls": {"mode": "SIMPLE", "credentialName": "c"}}]),
    ),
    (  # validateServer: plain HTTP servers take only an httpsRedirect
        "server cannot have TLS settings for plain text HTTP ports",
        gateway(servers=[server(80, "HTTP", mode="SIMPLE")]),
        gateway(servers=[{**server(80, "HTTP", mode=None), "tls": {"httpsRedirect": True}}]),
    ),
    (  # envoyfilter.go validateEnvoyFilter
        "Envoy filter: missing patch value for non-remove operation",
        {
            **envoy_filter(selector={"istio": "egressgateway"}),
            "spec": {
                "workloadSelector": {"labels": {"istio": "egressgateway"}},
                "configPatches": [{"applyTo": "CLUSTER", "patch": {"operation": "ADD"}}],
            },
        },
        {
            **envoy_filter(selector={"istio": "egressgateway"}),
            "spec": {
                "workloadSelector": {"labels": {"istio": "egressgateway"}},
                "configPatches": [
                    {"applyTo": "CLUSTER", "patch": {"operation": "ADD", "value": {"name": "c"}}}
                ],
            },
        },
    ),
    (  # ValidateVirtualService
        "http, tcp or tls must be provided in virtual service",
        virtual_service(hosts=("www.wikipedia.org",)),
        virtual_service(hosts=("www.wikipedia.org",), http=HTTP_ROUTE),
    ),
    (  # validateSniHost
        'SNI host "*.wikipedia.org" is not a compatible subset of any of the virtual service hosts: '
        "[en.wikipedia.org]",
        virtual_service(hosts=("en.wikipedia.org",), tls=[tls_rule(destination("www.wikipedia.org"))]),
        virtual_service(hosts=("*.wikipedia.org",), tls=[tls_rule(destination("www.wikipedia.org"))]),
    ),
    (  # ValidateVirtualService: `*` bound to the mesh
        "wildcard host * is not allowed for virtual services bound to the mesh gateway",
        virtual_service(hosts=("*",), http=HTTP_ROUTE),
        virtual_service(hosts=("*",), gateways=["istio-system/egress"], http=HTTP_ROUTE),
    ),
]


@pytest.mark.parametrize(("words", "refused", "fixed"), CASES, ids=[c[0][:40] for c in CASES])
def test_the_webhook_refuses_it_in_its_own_words(words: str, refused: dict, fixed: dict) -> None:
    found = [f for f in analyze(refused) if f.code == "IST0106"]
    assert [f.severity for f in found] == ["error"]
    assert words in found[0].message
    assert "IST0106" not in {f.code for f in analyze(fixed)}


def test_a_refused_object_is_left_out_of_the_path() -> None:
    """The API server never stores a refused ServiceEntry: nothing puts the host in the registry."""
    wildcard_dns = service_entry(resolution="DNS")
    assert predict([wildcard_dns], "en.wikipedia.org", 443) == "passthrough"
    assert predict([wildcard_dns], "en.wikipedia.org", 443, registry_only=True) == "blackhole"
    assert predict([service_entry(resolution="NONE")], "en.wikipedia.org", 443) == "direct"
