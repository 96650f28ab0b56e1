"""Small manifests built in code: each test states only what it is about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.analyzer import Finding, analyze_documents

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "tests" / "data" / "istio-1.23.2-crds.yaml"  # source and licence: tests/data/README.md

DEMO_GATEWAY = "istio-egressgateway.istio-system.svc.cluster.local"
NETWORKING = "networking.istio.io/v1"


def obj(
    kind: str, name: str, namespace: str | None = "istio-system", api: str = NETWORKING, **spec: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    document: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": metadata}
    if spec:
        document["spec"] = spec
    return document


def server(
    number: int = 443,
    protocol: str = "TLS",
    hosts: tuple[str, ...] = ("*.wikipedia.org",),
    mode: str | None = "PASSTHROUGH",
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "port": {"number": number, "name": f"{protocol.lower()}-{number}", "protocol": protocol},
        "hosts": list(hosts),
    }
    if mode:
        result["tls"] = {"mode": mode}
    return result


def gateway(
    name: str = "egress",
    selector: dict[str, str] | None = None,
    servers: list[dict[str, Any]] | None = None,
    namespace: str = "istio-system",
) -> dict:
    return obj(
        "Gateway",
        name,
        namespace,
        selector=selector or {"istio": "egressgateway"},
        servers=servers or [server()],
    )


def destination(host: str, subset: str | None = None, port: int | None = None) -> dict[str, Any]:
    dest: dict[str, Any] = {"host": host}
    if subset:
        dest["subset"] = subset
    if port:
        dest["port"] = {"number": port}
    return dest


def tls_rule(
    dest: dict[str, Any],
    gateways: list[str] | None = None,
    port: int = 443,
    sni: tuple[str, ...] = ("*.wikipedia.org",),
) -> dict[str, Any]:
    match: dict[str, Any] = {"port": port, "sniHosts": list(sni)}
    if gateways:
        match["gateways"] = gateways
    return {"match": [match], "route": [{"destination": dest}]}


def virtual_service(
    name: str = "wikipedia",
    hosts: tuple[str, ...] = ("*.wikipedia.org",),
    gateways: list[str] | None = None,
    namespace: str = "istio-system",
    **routes: list[dict[str, Any]],
) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": list(hosts), **routes}
    if gateways:
        spec["gateways"] = gateways
    return obj("VirtualService", name, namespace, **spec)


def destination_rule(
    name: str = "gateway",
    host: str = DEMO_GATEWAY,
    subsets: list[dict[str, Any]] | None = None,
    tls: str | None = None,
    namespace: str = "istio-system",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"host": host}
    if subsets is not None:
        spec["subsets"] = subsets
    if tls:
        spec["trafficPolicy"] = {"tls": {"mode": tls}}
    return obj("DestinationRule", name, namespace, **spec)


def service_entry(
    name: str = "wikipedia",
    hosts: tuple[str, ...] = ("*.wikipedia.org",),
    number: int = 443,
    protocol: str = "TLS",
    namespace: str = "istio-system",
    **extra: Any,
) -> dict[str, Any]:
    port = {"number": number, "name": f"{protocol.lower()}-{number}", "protocol": protocol}
    return obj("ServiceEntry", name, namespace, hosts=list(hosts), ports=[port], **extra)


def k8s_service(
    name: str, namespace: str, selector: dict[str, str], port: int = 443, target: int = 8443
) -> dict[str, Any]:
    ports = [{"name": "tls", "port": port, "targetPort": target}]
    return obj("Service", name, namespace, api="v1", selector=selector, ports=ports)


def deployment(name: str, namespace: str, labels: dict[str, str], gateway: bool = True) -> dict:
    template: dict[str, Any] = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "istio-proxy", "image": "auto"}]},
    }
    if gateway:
        template["metadata"]["annotations"] = {"inject.istio.io/templates": "gateway"}
    return obj(
        "Deployment", name, namespace, api="apps/v1", selector={"matchLabels": labels}, template=template
    )


def namespace(name: str) -> dict[str, Any]:
    return obj("Namespace", name, None, api="v1")


def envoy_filter(
    name: str = "patch",
    namespace: str = "istio-system",
    operation: str = "MERGE",
    selector: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    patch = {
        "applyTo": "NETWORK_FILTER",
        "match": {
            "context": "GATEWAY",
            "listener": {"filterChain": {"filter": {"name": "envoy.filters.network.tcp_proxy"}}},
        },
        "patch": {"operation": operation, "value": {"name": "envoy.tcp_proxy"}},
    }
    spec: dict[str, Any] = {"configPatches": [patch], **extra}
    if selector:
        spec["workloadSelector"] = {"labels": selector}
    return obj("EnvoyFilter", name, namespace, api="networking.istio.io/v1alpha3", **spec)


def analyze(*docs: dict[str, Any], registry_only: bool = False) -> list[Finding]:
    return analyze_documents(list(docs), registry_only=registry_only)


def codes(findings: list[Finding], severity: str | None = None) -> set[str]:
    return {f.code for f in findings if severity is None or f.severity == severity}


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
