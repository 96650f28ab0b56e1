"""Checks of Gateways: what they select, which ports they open, who routes through them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lab.analyzer.findings import Finding
from lab.analyzer.hosts import overlaps
from lab.analyzer.model import MESH, Config, gateway_ref
from lab.analyzer.resources import Resource
from lab.analyzer.rulebook import Rule, rule


def selector_text(gateway: Resource) -> str:
    selector = gateway.spec.get("selector") or {}
    return ",".join(f"{k}={v}" for k, v in selector.items()) or "(none: every gateway)"


def server_hosts(server: dict[str, Any]) -> list[str]:
    """A server's hosts without their optional `namespace/` prefix."""
    return [str(h).split("/", 1)[-1] for h in server.get("hosts") or []]


def route_kind(server: dict[str, Any]) -> str:
    """Which VirtualService section routes a Gateway server's traffic.

    istio/istio@1.23.2:pilot/pkg/networking/core/gateway.go buildGatewayListeners: HTTP servers,
    and HTTPS servers that terminate TLS, get an HTTP connection manager (`http` routes);
    the others are TCP based (createGatewayTCPFilterChainOpts): a passthrough server (PASSTHROUGH,
    AUTO_PASSTHROUGH) matches `tls` routes by SNI, a TCP server or one that terminates TLS
    (SIMPLE, MUTUAL, ISTIO_MUTUAL on protocol TLS) forwards by `tcp` routes.
    """
    protocol = str((server.get("port") or {}).get("protocol", "")).upper()
    tls = server.get("tls")
    # A `tls` block without `mode` is PASSTHROUGH: the enum's zero value (networking/v1alpha3/gateway.proto).
    mode = str(tls.get("mode") or "PASSTHROUGH") if isinstance(tls, dict) else None
    passthrough = mode in ("PASSTHROUGH", "AUTO_PASSTHROUGH")
    if protocol in ("HTTP", "HTTP2", "GRPC", "GRPC-WEB") or (protocol == "HTTPS" and not passthrough):
        return "http"
    return "tls" if passthrough else "tcp"


def tcp_based(server: dict[str, Any]) -> bool:
    return route_kind(server) != "http"


def servers(gateway: Resource) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, server in enumerate(gateway.spec.get("servers") or []):
        if isinstance(server, dict) and isinstance((server.get("port") or {}).get("number"), int):
            yield index, server


@rule("KIA1102", "error", "VirtualService names a missing gateway")
def missing_gateway(config: Config, found: Rule) -> Iterator[Finding]:
    for vs, name, ref, elsewhere in _unresolved(config):
        if not (elsewhere and _unqualified(name)):
            message = f"gateway {ref} does not exist: the routes bound to it apply nowhere"
            yield found(vs, message, "fix the name (namespace/name) or add the Gateway")


@rule("KIA1108", "error", "unqualified gateway name resolves in the wrong namespace")
def gateway_in_other_namespace(config: Config, found: Rule) -> Iterator[Finding]:
    for vs, name, ref, elsewhere in _unresolved(config):
        if elsewhere and _unqualified(name):
            real = f"{elsewhere[0].namespace}/{elsewhere[0].name}"
            message = (
                f"gateway {name} means {ref} (unqualified names are in the VirtualService's "
                f"namespace), but the Gateway is {real}: the routes bound to it apply nowhere"
            )
            yield found(vs, message, f"write {real}")


def _unqualified(name: str) -> bool:
    return "/" not in name and "." not in name


def _unresolved(config: Config) -> Iterator[tuple[Resource, str, str, list[Resource]]]:
    """Gateway names in VirtualServices that match no Gateway, with same-named Gateways."""
    for vs in config.of_kind("VirtualService"):
        names = [str(n) for n in vs.spec.get("gateways") or []]
        for route in config.routes_of(vs):
            names += [str(g) for m in route.matches for g in m.get("gateways") or []]
        for name in dict.fromkeys(names):
            ref = gateway_ref(name, vs.namespace)
            ns, _, gw = ref.partition("/")
            if ref == MESH or config.find("Gateway", ns, gw):
                continue
            yield vs, name, ref, config.gateways_named(gw)


@rule("KIA0302", "warning", "Gateway selector matches no workload")
def selects_no_workload(config: Config, found: Rule) -> Iterator[Finding]:
    """A warning while nothing routes through the Gateway; an error once a VirtualService binds
    routes to it, as those routes then apply on no proxy (pilot/pkg/model/gateway.go: a proxy
    gets the servers of the Gateways whose selector matches its labels, and no proxy matches)."""
    for gateway in config.of_kind("Gateway"):
        if not config.gateway_workloads(gateway):
            bound = config.routes_on(f"{gateway.namespace}/{gateway.name}")
            message = f"selector {selector_text(gateway)} matches no workload: no proxy serves it"
            if bound:
                message += f", so the routes {bound[0].vs.ref} binds to it apply nowhere"
            hint = "select a gateway's pod labels (the demo egress gateway: istio=egressgateway)"
            yield found(gateway, message, hint, "error" if bound else None)


@rule("LAB0202", "warning", "Gateway selector matches more than one gateway")
def selects_several_gateways(config: Config, found: Rule) -> Iterator[Finding]:
    for gateway in config.of_kind("Gateway"):
        proxies = [w for w in config.gateway_workloads(gateway) if w.proxy == "gateway"]
        if len(proxies) > 1:
            names = ", ".join(f"{w.namespace}/{w.name}" for w in proxies[:4])
            names += f" and {len(proxies) - 4} more" if len(proxies) > 4 else ""
            message = (
                f"selector {selector_text(gateway)} matches {len(proxies)} gateways ({names}): "
                "each of them gets these servers"
            )
            hint = "give the gateway you mean a distinct pod label and select that"
            yield found(gateway, message, hint)


@rule("IST0162", "warning", "Gateway port not on the gateway Service")
def port_not_on_service(config: Config, found: Rule) -> Iterator[Finding]:
    for group in config.gateway_groups():  # one selector: the same workloads and Services
        workloads = config.gateway_workloads(group[0])
        services = {(s.namespace, s.name): s for w in workloads for s in config.services_of(w)}
        if not services:
            continue
        offered = {n for s in services.values() for p in s.ports for n in (p.number, p.target_port)}
        names = sorted(f"{ns}/{name}" for ns, name in services)
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        for gateway in group:
            for _, server in servers(gateway):
                number = server["port"]["number"]
                if number not in offered:
                    message = f"server port {number} is not a port or targetPort of {shown}"
                    yield found(gateway, message, "use a port the gateway Service exposes")


@rule("LAB0201", "error", "PASSTHROUGH server with no tls route bound to the Gateway")
def passthrough_without_route(config: Config, found: Rule) -> Iterator[Finding]:
    for gateway in config.of_kind("Gateway"):
        ref = f"{gateway.namespace}/{gateway.name}"
        for _, server in servers(gateway):
            if (server.get("tls") or {}).get("mode") != "PASSTHROUGH":
                continue
            number, hosts = server["port"]["number"], server_hosts(server)
            routed = [
                r
                for r in config.routes_on(ref)
                if r.kind == "tls"
                and (not r.match_ports() or number in r.match_ports())
                and any(overlaps(s, h) for s in r.sni_hosts() for h in hosts)
            ]
            if not routed:
                message = (
                    f"server port {number} (TLS PASSTHROUGH, hosts {', '.join(hosts)}) has no "
                    f"VirtualService tls route bound to {ref}: the gateway has no filter chain "
                    "for this traffic and drops the connection"
                )
                hint = f"bind a tls route (gateways [{ref}], port {number}, sniHosts) to it"
                yield found(gateway, message, hint)
