"""The path a request takes through the mesh, hop by hop, and which resource decided each step.

It follows istiod's logic on the model (inventory plus manifests), not a running Envoy: the
client sidecar's listener, route and cluster; the gateway's server, route and cluster; the
EnvoyFilter additions an SNI forward proxy needs; and the upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lab.analyzer import envoy
from lab.analyzer.hosts import covers, fqdn
from lab.analyzer.inventory import Workload, selects
from lab.analyzer.model import MESH, Config, RegistryEntry, Route
from lab.analyzer.resources import Resource
from lab.analyzer.rules.gateways import server_hosts, servers
from lab.errors import LabError

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Request:
    url: str
    scheme: str
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


@dataclass(frozen=True)
class Step:
    what: str  # listener, route, cluster, endpoints, server, filter chain, upstream
    value: str
    decided_by: str  # the resource (or mesh setting) that decided it
    why: str


@dataclass
class Hop:
    proxy: str  # "client sidecar", "egress gateway", "internal listener", "upstream"
    where: str
    steps: list[Step] = field(default_factory=list)

    def add(self, what: str, value: str, decided_by: str, why: str) -> None:
        self.steps.append(Step(what, value, decided_by, why))


@dataclass
class Path:
    source: str
    request: Request
    policy: str
    hops: list[Hop] = field(default_factory=list)
    outcome: str = ""
    reached: bool = False


def parse_url(url: str) -> Request:
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise LabError(f"bad URL {url!r}", "give a full http:// or https:// URL")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise LabError(f"bad URL {url!r}: the port is not a number", None) from None
    return Request(url, parts.scheme, parts.hostname.lower(), port)


def find_source(config: Config, source: str) -> Workload:
    namespace, _, name = source.rpartition("/")
    candidates = [w for w in config.workloads if w.name == name and (w.namespace == (namespace or "default"))]
    if not candidates:
        known = ", ".join(sorted(f"{w.namespace}/{w.name}" for w in config.workloads if w.proxy))
        raise LabError(f"no workload {source} in the lab", f"try one of: {known}")
    return candidates[0]


def explain(config: Config, source: str, url: str) -> Path:
    request = parse_url(url)
    client = find_source(config, source)
    path = Path(f"{client.namespace}/{client.name}", request, config.inventory.outbound_policy)
    _Tracer(config, request, path).client(client)
    return path


class _Tracer:
    def __init__(self, config: Config, request: Request, path: Path) -> None:
        self.config = config
        self.request = request
        self.path = path

    def hop(self, proxy: str, where: str) -> Hop:
        hop = Hop(proxy, where)
        self.path.hops.append(hop)
        return hop

    def end(self, outcome: str, reached: bool) -> None:
        self.path.outcome = outcome
        self.path.reached = reached

    # --- the client ---------------------------------------------------------------------------
    def client(self, client: Workload) -> None:
        where = f"{client.namespace}/{client.name}"
        if client.proxy != "sidecar":
            hop = self.hop("client without sidecar", where)
            hop.add("upstream", self._target(), client.ref, "no istio-proxy: Istio never sees it")
            return self.end("leaves the pod directly, outside the mesh", True)
        hop = self.hop("client sidecar", where)
        entries = self.config.serving(self.request.host, self.request.port)
        route = self._mesh_route(entries)
        if route is None and not entries:
            return self._unregistered(hop)
        listener = self._listener(entries[0] if entries else None)
        if entries:
            entry = entries[0]
            protocol = entry.port(self.request.port).protocol  # type: ignore[union-attr]
            why = f"puts {entry.host}:{self.request.port} ({protocol}) in the registry"
            hop.add("listener", listener, entry.ref, why)
        if route is not None:
            dest = route.destinations[0]
            host = fqdn(str(dest.get("host")), route.vs.namespace)
            port = (dest.get("port") or {}).get("number") or self.request.port
            hop.add(
                "route",
                self._route_text(route),
                route.vs.ref,
                f"first {route.kind} rule on mesh matching {self.request.host}",
            )
            return self.cluster(hop, host, dest.get("subset"), port, "sidecar")
        entry = entries[0]
        hop.add(
            "route",
            f"default route to {entry.host}",
            entry.ref,
            "no VirtualService routes this host on the mesh",
        )
        return self.cluster(hop, entry.host, None, self.request.port, "sidecar")

    def _unregistered(self, hop: Hop) -> None:
        ignored = [
            vs.ref
            for vs in self.config.of_kind("VirtualService")
            if any(covers(fqdn(str(h), vs.namespace), self.request.host) for h in vs.spec.get("hosts") or [])
        ]
        why = f"no Service or ServiceEntry has {self.request.host}:{self.request.port}"
        if ignored:
            why += f", so {', '.join(ignored)} (which names it) is not applied"
        hop.add("listener", self._listener(None), "registry", why)
        policy = self.config.inventory.outbound_policy
        if self.config.inventory.registry_only:
            hop.add(
                "cluster",
                "BlackHoleCluster",
                f"mesh outboundTrafficPolicy {policy}",
                "hosts outside the registry are refused",
            )
            return self.end("refused by the client sidecar (curl: exit 35 for https, 502 for http)", False)
        hop.add(
            "cluster",
            "PassthroughCluster",
            f"mesh outboundTrafficPolicy {policy}",
            "hosts outside the registry go straight out",
        )
        upstream = self.hop("upstream", self._target())
        upstream.add("upstream", self._target(), "original destination", "the IP the app resolved, unchanged")
        return self.end(
            "leaves the mesh directly through PassthroughCluster: no egress gateway sees it", True
        )

    def _listener(self, entry: RegistryEntry | None) -> str:
        port = self.request.port
        if self.request.tls:
            if entry is None:
                return f"virtualOutbound 0.0.0.0_15001: no listener for {self.request.host}:{port}"
            chain = f"filter chain for SNI {entry.host}"
            return (
                f"0.0.0.0_{port}, {chain}" if not entry.has_vip else f"{entry.ref} ClusterIP:{port}, {chain}"
            )
        return f"0.0.0.0_{port}, route config {port}"

    def _mesh_route(self, entries: list[RegistryEntry]) -> Route | None:
        """The first mesh rule for the request; TLS rules apply only to hosts in the registry."""
        kind = "tls" if self.request.tls else "http"
        if kind == "tls" and not entries:
            return None
        for route in self.config.routes():
            if route.kind != kind or MESH not in route.gateways or not route.destinations:
                continue
            hosts = [fqdn(str(h), route.vs.namespace) for h in route.vs.spec.get("hosts") or []]
            if not any(covers(h, self.request.host) for h in hosts):
                continue
            if route.match_ports() and self.request.port not in route.match_ports():
                continue
            if kind == "tls" and not any(covers(s, self.request.host) for s in route.sni_hosts()):
                continue
            return route
        return None

    def _route_text(self, route: Route) -> str:
        dest = route.destinations[0]
        subset = f" subset {dest['subset']}" if dest.get("subset") else ""
        more = f" (+{len(route.destinations) - 1} more by weight)" if len(route.destinations) > 1 else ""
        match = f"sniHosts {', '.join(route.sni_hosts())}" if route.kind == "tls" else f"{route.kind} match"
        ports = f", port {', '.join(map(str, sorted(route.match_ports())))}" if route.match_ports() else ""
        return f"{route.kind}[{route.index}] {match}{ports} -> {dest.get('host')}{subset}{more}"

    # --- clusters and endpoints ---------------------------------------------------------------
    def cluster(self, hop: Hop, host: str, subset: Any, port: int, proxy: str) -> None:
        entry = self.config.entry_for(host)
        if entry is None:
            hop.add(
                "cluster",
                f"none for {host}",
                "registry",
                "the destination host is in no Service or ServiceEntry (KIA1101)",
            )
            return self.end(
                f"fails at the {proxy}: no cluster for {host} (503 NR, or a reset for TLS)", False
            )
        name = f"outbound|{port}|{subset or ''}|{host}"
        labels: dict[str, str] = {}
        if subset:
            found = self.config.subset(host, str(subset))
            if found is None:
                hop.add("cluster", name, "registry", f"no DestinationRule defines subset {subset} (KIA1107)")
                return self.end(f"fails at the {proxy}: the subset's cluster does not exist (503 NR)", False)
            labels = {k: str(v) for k, v in (found[1].get("labels") or {}).items()}
        mode, rule = self.config.tls_mode(host, subset, port)
        why = f"subset {subset} selects {_labels(labels)}" if subset else "the host's own cluster"
        if mode:
            why += f"; TLS {mode}"
        hop.add("cluster", name + (f" over {mode}" if mode else ""), rule.ref if rule else entry.ref, why)
        workloads = self.config.endpoints(entry)
        if workloads is None:
            return self.upstream(hop, entry, port, mode)
        chosen = [w for w in workloads if not labels or selects(labels, w.labels)]
        mapped = entry.port(port)
        target = mapped.target_port if mapped else port
        if not chosen:
            why = (
                f"subset labels {_labels(labels)} select none of its pods (KIA0203)"
                if labels
                else "no pod matches its selector"
            )
            hop.add("endpoints", "none", entry.ref, why)
            return self.end(f"fails at the {proxy}: no healthy upstream (503 UH)", False)
        names = ", ".join(f"{w.namespace}/{w.name}" for w in chosen)
        hop.add("endpoints", f"{names} port {target}", entry.ref, f"port {port} -> {target}")
        gateway = next((w for w in chosen if w.proxy == "gateway"), None)
        if gateway is not None:
            return self.gateway(gateway, port, target, mode)
        return self.end(f"reaches {names} inside the mesh", True)

    def upstream(self, hop: Hop, entry: RegistryEntry, port: int, mode: str | None) -> None:
        mapped = entry.port(port)
        target = mapped.target_port if mapped else port
        host = self.request.host if entry.host.startswith("*") else entry.host
        if entry.resolution == "DNS":
            how = f"resolution DNS: {host} looked up by the proxy"
        elif entry.resolution == "STATIC":
            how = "resolution STATIC: the ServiceEntry's endpoints"
        else:
            how = "resolution NONE: the IP the app resolved (original destination)"
        if mode in ("SIMPLE", "MUTUAL"):
            how += f"; the proxy originates TLS ({mode})"
        last = self.hop("upstream", f"{host}:{target}")
        last.add("upstream", f"{host}:{target}", entry.ref, how)
        via = next((h.where for h in self.path.hops if h.proxy == "egress gateway"), None)
        through = f" through the egress gateway {via}" if via else " directly from the sidecar"
        return self.end(f"reaches {host}:{target}{through}", True)

    # --- the gateway --------------------------------------------------------------------------
    def gateway(self, workload: Workload, port: int, target: int | str, incoming: str | None) -> None:
        hop = self.hop("egress gateway", f"{workload.namespace}/{workload.name}")
        found = self._server(workload, port, target)
        if found is None:
            hop.add(
                "listener",
                f"none on {target}",
                "Gateways",
                f"no Gateway selecting {workload.ref} has a server on port {port} or {target}",
            )
            return self.end("refused by the gateway: nothing listens there", False)
        gateway, server = found
        number, mode = server["port"]["number"], (server.get("tls") or {}).get("mode")
        protocol = str(server["port"].get("protocol", "")).upper()
        hosts = ", ".join(server_hosts(server))
        hop.add(
            "listener",
            f"0.0.0.0_{target}, server {protocol} {mode or ''} hosts {hosts}".replace("  ", " "),
            gateway.ref,
            f"selects {_labels(_selector(gateway))}",
        )
        if (incoming == "ISTIO_MUTUAL") != (mode == "ISTIO_MUTUAL"):
            hop.add(
                "tls",
                f"client sends {incoming or 'no Istio mTLS'}",
                gateway.ref,
                f"the server expects {mode or 'plain traffic'} (LAB0301/LAB0302)",
            )
            return self.end("fails at the gateway: the TLS modes of sidecar and gateway disagree", False)
        if mode == "ISTIO_MUTUAL":
            hop.add(
                "tls",
                "terminates the mesh mTLS",
                gateway.ref,
                "the app's own TLS (SNI " + self.request.host + ") stays inside",
            )
        kind = "tls" if mode == "PASSTHROUGH" else "tcp" if protocol in ("TLS", "TCP") else "http"
        route = self._gateway_route(gateway, number, kind)
        if route is None:
            code = " (LAB0201)" if kind == "tls" else ""
            hop.add(
                "route",
                "none",
                gateway.ref,
                f"no VirtualService {kind} rule is bound to it on port {number}{code}",
            )
            return self.end("dropped by the gateway: no route for this traffic", False)
        dest = route.destinations[0]
        host = fqdn(str(dest.get("host")), route.vs.namespace)
        dest_port = (dest.get("port") or {}).get("number") or self.request.port
        hop.add(
            "route",
            self._route_text(route),
            route.vs.ref,
            f"first {kind} rule bound to {gateway.namespace}/{gateway.name}",
        )
        patches = envoy.patches_for(self.config, workload)
        if kind == "tcp" and patches.tcp_proxy_cluster:
            cluster, ef = patches.tcp_proxy_cluster
            replaced = f"outbound|{dest_port}||{host}"
            hop.add("cluster", cluster, ef.ref, f"MERGE on tcp_proxy replaces {replaced}")
            return self.envoy_cluster(hop, workload, patches, cluster)
        return self.cluster(hop, host, dest.get("subset"), dest_port, "gateway")

    def _server(
        self, workload: Workload, port: int, target: int | str
    ) -> tuple[Resource, dict[str, Any]] | None:
        for gateway in self.config.gateways_of(workload):
            for _, server in servers(gateway):
                if server["port"]["number"] in (port, target):
                    return gateway, server
        return None

    def _gateway_route(self, gateway: Resource, number: int, kind: str) -> Route | None:
        ref = f"{gateway.namespace}/{gateway.name}"
        for route in self.config.routes():
            if route.kind != kind or ref not in route.gateways or not route.destinations:
                continue
            if route.match_ports() and number not in route.match_ports():
                continue
            if kind == "tls" and not any(covers(s, self.request.host) for s in route.sni_hosts()):
                continue
            hosts = [fqdn(str(h), route.vs.namespace) for h in route.vs.spec.get("hosts") or []]
            if kind != "tcp" and not any(covers(h, self.request.host) for h in hosts):
                continue
            return route
        return None

    # --- EnvoyFilter additions ----------------------------------------------------------------
    def envoy_cluster(self, hop: Hop, workload: Workload, patches: envoy.ProxyPatches, cluster: str) -> None:
        listener = patches.internal_listener_of(cluster)
        if listener is not None:
            inner = self.hop("internal listener", f"{listener} in {workload.namespace}/{workload.name}")
            chain = patches.sni_chain(listener, self.request.host)
            if chain is None:
                inner.add(
                    "filter chain",
                    "none",
                    patches.clusters[cluster].by.ref,
                    f"no filter chain of {listener} matches SNI {self.request.host}",
                )
                return self.end(
                    f"dropped by the gateway: {listener} does not accept {self.request.host}", False
                )
            filters, added = chain
            names = (filters.get("filter_chain_match") or {}).get("server_names") or ["*"]
            inner.add(
                "filter chain",
                f"server_names {', '.join(map(str, names))}",
                added.by.ref,
                f"tls_inspector reads SNI {self.request.host}",
            )
            dfp = envoy.filter_named(filters, envoy.SNI_DFP)
            port = ((dfp or {}).get("typed_config") or {}).get("port_value", self.request.port)
            proxy = envoy.filter_named(filters, envoy.TCP_PROXY)
            next_cluster = str(((proxy or {}).get("typed_config") or {}).get("cluster", ""))
            if dfp:
                inner.add(
                    "filter",
                    f"sni_dynamic_forward_proxy port {port}",
                    added.by.ref,
                    "the upstream is the SNI, resolved per connection",
                )
            inner.add("cluster", next_cluster, added.by.ref, "tcp_proxy of the matching filter chain")
            if patches.is_forward_proxy(next_cluster):
                last = self.hop("upstream", f"{self.request.host}:{port}")
                last.add(
                    "upstream",
                    f"{self.request.host}:{port}",
                    patches.clusters[next_cluster].by.ref,
                    "dynamic forward proxy: DNS lookup of the SNI",
                )
                return self.end(
                    f"reaches {self.request.host}:{port} through the egress gateway {workload.namespace}/{workload.name}",
                    True,
                )
            return self.envoy_cluster(inner, workload, patches, next_cluster)
        if patches.is_forward_proxy(cluster):
            last = self.hop("upstream", self._target())
            last.add("upstream", self._target(), patches.clusters[cluster].by.ref, "dynamic forward proxy")
            return self.end(f"reaches {self._target()} through the egress gateway", True)
        hop.add("cluster", cluster, "EnvoyFilter", "a cluster this analyzer cannot follow")
        return self.end(f"unknown: the gateway sends to {cluster}", False)

    def _target(self) -> str:
        return f"{self.request.host}:{self.request.port}"


def _labels(labels: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "every pod (no labels)"


def _selector(gateway: Resource) -> dict[str, Any]:
    return gateway.spec.get("selector") or {}
