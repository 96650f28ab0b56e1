"""Checks that routes and rules name hosts that are in the registry."""

from __future__ import annotations

from collections.abc import Iterator

from lab.analyzer import envoy
from lab.analyzer.findings import Finding
from lab.analyzer.hosts import fqdn
from lab.analyzer.model import MESH, Config, Route, selector_key
from lab.analyzer.resources import Resource
from lab.analyzer.rulebook import Rule, rule


@rule("LAB0101", "error", "VirtualService hosts not in the registry: mesh routes ignored")
def vs_hosts_not_in_registry(config: Config, found: Rule) -> Iterator[Finding]:
    for vs in config.of_kind("VirtualService"):
        mesh_routes = [r for r in config.routes_of(vs) if MESH in r.gateways]
        if not mesh_routes:
            continue
        hosts = [fqdn(str(h), vs.namespace) for h in vs.spec.get("hosts") or []]
        missing = [h for h in hosts if not config.in_registry(h)]
        if not missing:
            continue
        names = ", ".join(missing)
        l4 = [r for r in mesh_routes if r.kind in ("tls", "tcp")]
        if l4:
            fate = (
                "are refused (BlackHoleCluster: the mesh is REGISTRY_ONLY)"
                if config.inventory.registry_only
                else "leave directly through PassthroughCluster (the mesh allows any host)"
            )
            message = (
                f"{names} not in the registry (no Service or ServiceEntry): sidecars build no "
                f"listener for it, so the mesh {l4[0].kind} routes are never applied and "
                f"requests {fate}"
            )
            yield found(vs, message, _service_entry_hint(missing[0], l4))
        else:
            message = (
                f"{names} not in the registry: sidecars apply these http routes only on ports other "
                "Services open as HTTP; on other ports requests leave through PassthroughCluster "
                "(or are refused when the mesh is REGISTRY_ONLY)"
            )
            yield found(vs, message, _service_entry_hint(missing[0], mesh_routes), "warning")


def _service_entry_hint(host: str, routes: list[Route]) -> str:
    ports = sorted({p for r in routes for p in r.match_ports()}) or [80 if routes[0].kind == "http" else 443]
    protocol = {"tls": "TLS", "tcp": "TCP", "http": "HTTP"}[routes[0].kind]
    return f"add a ServiceEntry for {host} (port {ports[0]}, protocol {protocol})"


@rule("KIA0202", "error", "DestinationRule host not in the registry")
def dr_host_not_in_registry(config: Config, found: Rule) -> Iterator[Finding]:
    for dr in config.of_kind("DestinationRule"):
        host = fqdn(str(dr.spec.get("host")), dr.namespace)
        if not config.in_registry(host):
            message = f"host {host} has no Service or ServiceEntry: istiod ignores this rule"
            hint = "use the Service's FQDN (name.namespace.svc.cluster.local) or add a ServiceEntry"
            yield found(dr, message, hint)


@rule("KIA1101", "error", "route destination host not found")
def destination_not_found(config: Config, found: Rule) -> Iterator[Finding]:
    for route in config.routes():
        for dest in route.destinations:
            host = fqdn(str(dest.get("host")), route.vs.namespace)
            if config.entry_for(host):
                continue
            where = f"{route.kind}[{route.index}]"
            placeholder = _placeholder_for(config, route)
            if placeholder:
                cluster, ef = placeholder
                message = (
                    f"{where} sends to {host}, which is not in the registry: a placeholder, "
                    f"as {ef.ref} sets the gateway's tcp_proxy cluster to {cluster}"
                )
                yield found(route.vs, message, "nothing to do; keeps the Gateway listener", "info")
                continue
            message = f"{where} sends to {host}, which no Service or ServiceEntry declares"
            yield found(route.vs, message, "fix the host or add a ServiceEntry for it")


def _placeholder_for(config: Config, route: Route) -> tuple[str, Resource] | None:
    """The EnvoyFilter cluster that replaces a gateway tcp route's destination, if any."""
    if route.kind != "tcp" or MESH in route.gateways:
        return None
    overrides = []
    for ref in route.gateways:
        ns, _, name = ref.partition("/")
        gateway = config.find("Gateway", ns, name)
        if gateway is not None:
            overrides += _overrides_of(config, gateway)
    if overrides and all(overrides):
        return overrides[0]
    return None


def _overrides_of(config: Config, gateway: Resource) -> list[tuple[str, Resource] | None]:
    """The tcp_proxy cluster each workload of the Gateway gets from EnvoyFilters, computed once
    per selector: Gateways that share one share these workloads."""
    key = ("tcp-overrides", *(f"{k}={v}" for k, v in selector_key(gateway)))
    known = config.memo.get(key)
    if known is None:
        known = [envoy.patches_for(config, w).tcp_proxy_cluster for w in config.gateway_workloads(gateway)]
        config.memo[key] = known
    return known


@rule("LAB0203", "error", "a gateway route sends to a host with resolution NONE")
def gateway_to_original_destination(config: Config, found: Rule) -> Iterator[Finding]:
    """A route bound to a Gateway whose destination's ServiceEntry has `resolution: NONE`.

    At a sidecar that host's cluster is ORIGINAL_DST; a gateway "cannot use passthrough clusters"
    and gets an EDS cluster instead (istio/istio@1.23.2:pilot/pkg/networking/core/cluster.go
    convertResolution), which a NONE ServiceEntry leaves empty. The address the sidecar dialled,
    the only "original destination" there is, is the gateway's own. Istio's wildcard egress task
    therefore routes the gateway to one host with a DNS ServiceEntry, and the 2023 egress-sni blog
    forwards by SNI with an EnvoyFilter instead.
    """
    for route in config.routes():
        gateways = sorted(g for g in route.gateways if g != MESH)
        if not gateways or _placeholder_for(config, route):
            continue
        for dest in route.destinations:
            host = fqdn(str(dest.get("host")), route.vs.namespace)
            entry = config.entry_for(host)
            if entry is None or entry.entry is None or entry.resolution != "NONE":
                continue
            if (entry.entry.spec.get("workloadSelector") or {}).get("labels"):
                continue  # its endpoints are workloads: an EDS cluster with members
            message = (
                f"{route.kind}[{route.index}] on {', '.join(gateways)} sends to {host}, whose {entry.ref} "
                "has resolution NONE: a gateway cannot forward to the original destination (for "
                "traffic a sidecar sent it, that address is the gateway itself), so its cluster has "
                "no endpoints and the gateway drops the request (a TLS client sees the connection "
                "reset, curl exits 35; an HTTP client gets 503 UH)"
            )
            hint = (
                "route the gateway to one host with a resolution DNS ServiceEntry (as the wildcard "
                "egress task does with www.wikipedia.org), or forward by SNI as the 2023 egress-sni blog does"
            )
            yield found(route.vs, message, hint)
