"""The path a request takes through the mesh, hop by hop, and which resource decided each step.

It follows istiod's logic on the model (inventory plus manifests), not a running Envoy: the
client sidecar's listener, route and cluster; the gateway's server, route and cluster; the
EnvoyFilter additions an SNI forward proxy needs; and the upstream. Each decision names, next to
the code, where Istio 1.23.2 makes it (istio/istio@1.23.2:<path>) or the API reference that
says so; every path ends with a verdict of lab.verdicts, the answer `invoke trace` would observe.
"""

from __future__ import annotations

from typing import Any

from lab.analyzer import envoy
from lab.analyzer.hosts import covers, fqdn
from lab.analyzer.inventory import Port, Workload, selects
from lab.analyzer.model import MESH, Config, RegistryEntry, Route
from lab.analyzer.path import Hop, Path, Request, parse_url
from lab.analyzer.resources import Resource
from lab.analyzer.rules.gateways import route_kind, server_hosts, servers
from lab.errors import LabError
from lab.verdicts import BLACKHOLE, DIRECT, DROPPED, EGRESS_GATEWAY, PASSTHROUGH

_NO_PORT = Port(0, protocol="NONE")


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

    def end(self, outcome: str, reached: bool, verdict: str = DROPPED) -> None:
        self.path.outcome = outcome
        self.path.reached = reached
        self.path.verdict = verdict

    # --- the client ---------------------------------------------------------------------------
    def client(self, client: Workload) -> None:
        where = f"{client.namespace}/{client.name}"
        if client.proxy != "sidecar":
            hop = self.hop("client without sidecar", where)
            hop.add("upstream", self._target(), client.ref, "no istio-proxy: Istio never sees it")
            # No sidecar, no interception (the istio-init/CNI iptables rules come with injection):
            # the pod's own connection, which `invoke trace` sees in no proxy's log.
            return self.end("leaves the pod directly, outside the mesh", True, DIRECT)
        return self.client_sidecar(self.hop("client sidecar", where))

    def client_sidecar(self, hop: Hop) -> None:
        """The client sidecar's outbound listener, route and cluster for the request.

        Sidecars build an outbound listener per Service/ServiceEntry port in the registry
        (istio/istio@1.23.2:pilot/pkg/networking/core/listener.go buildSidecarOutboundListeners);
        a VirtualService bound to `mesh` adds routes to the listeners of the hosts it names
        (httproute.go BuildSidecarOutboundVirtualHosts for http; tls.go
        buildSidecarOutboundTLSFilterChainOpts and buildSidecarOutboundTCPFilterChainOpts for tls
        and tcp), and without one the default route goes to the host's own cluster.
        """
        route, anchor = self._mesh_route()
        aliases = sum(1 for s in hop.steps if s.what == "alias")
        if anchor is not None and anchor.service is not None and anchor.service.external_name and aliases < 3:
            return self._alias(hop, anchor)
        if anchor is None:
            return self._unregistered(hop)
        port = self.request.port
        protocol = anchor.port(port).protocol  # type: ignore[union-attr]
        why = f"puts {anchor.host}:{port} ({protocol}) in the registry"
        if route is not None:
            why += f", so {route.vs.ref} applies on this port"
        hop.add("listener", self._listener(anchor, route), anchor.ref, why)
        if route is not None:
            dest = route.destinations[0]
            host = fqdn(str(dest.get("host")), route.vs.namespace)
            dest_port = (dest.get("port") or {}).get("number") or port
            why = f"first {route.kind} rule on mesh matching {self.request.host}"
            hop.add("route", self._route_text(route), route.vs.ref, why)
            return self.cluster(hop, host, dest.get("subset"), dest_port, "sidecar")
        why = "no VirtualService routes this host on the mesh"
        hop.add("route", f"default route to {anchor.host}", anchor.ref, why)
        return self.cluster(hop, anchor.host, None, port, "sidecar")

    def _alias(self, hop: Hop, alias: RegistryEntry) -> None:
        """An ExternalName Service: an alias of its externalName, with no listener or cluster.

        ENABLE_EXTERNAL_NAME_ALIAS is on by default in 1.23 (istio/istio@1.23.2:pilot/pkg/features/
        pilot.go): the Service gets no listener (listener.go buildSidecarOutboundListener), no
        cluster (cluster.go) and no virtual host of its own (httproute.go); its name is added
        to the concrete host's virtual host, and DestinationRules for the alias do not apply.
        The app's DNS answer (a CNAME) leads to the external host's address.
        """
        assert alias.service is not None and alias.service.external_name
        target = alias.service.external_name
        why = f"type ExternalName: an alias of {target}, with no listener or cluster of its own"
        hop.add("alias", f"{alias.host} -> {target}", alias.ref, why)
        concrete = self.config.serving(target, self.request.port)
        if concrete:
            self.request = Request(self.request.url, self.request.scheme, target, self.request.port)
            return self.client_sidecar(hop)
        return self._unregistered(hop, f"{target} (the alias' target) is in no Service or ServiceEntry")

    def _unregistered(self, hop: Hop, reason: str | None = None) -> None:
        host = self.request.host
        naming = [
            (vs, pattern)
            for vs in self.config.of_kind("VirtualService")
            if MESH in (vs.spec.get("gateways") or [MESH])
            for pattern in (fqdn(str(h), vs.namespace) for h in vs.spec.get("hosts") or [])
            if covers(pattern, host)
        ]
        if naming:
            vs, pattern = naming[0]
            why = f"no ServiceEntry puts {pattern} in the registry, so {vs.ref} is not applied"
        else:
            why = reason or f"no Service or ServiceEntry has {host}:{self.request.port}"
        hop.add("listener", self._fallback_listener(), "registry", why)
        # Hosts outside the registry: the virtualOutbound listener's catch-all, or the port
        # listener's default chain, goes to PassthroughCluster under ALLOW_ANY and to
        # BlackHoleCluster (TCP) or the block_all route (HTTP) under REGISTRY_ONLY
        # (istio/istio@1.23.2:pilot/pkg/networking/core/listener_builder.go buildOutboundCatchAllNetworkFilterChains,
        # httproute.go BuildSidecarOutboundVirtualHosts / getVirtualHostsForSniffedServicePort).
        policy = self.config.inventory.outbound_policy
        if self.config.inventory.registry_only:
            hop.add(
                "cluster",
                "BlackHoleCluster",
                f"mesh outboundTrafficPolicy {policy}",
                "hosts outside the registry are refused",
            )
            refused = "curl exits 35" if self.request.tls else "the sidecar answers 502"
            return self.end(f"refused by the client sidecar ({refused})", False, BLACKHOLE)
        hop.add(
            "cluster",
            "PassthroughCluster",
            f"mesh outboundTrafficPolicy {policy}",
            "hosts outside the registry go straight out",
        )
        upstream = self.hop("upstream", self._target())
        upstream.add("upstream", self._target(), "original destination", "the IP the app resolved, unchanged")
        return self.end(
            "leaves the mesh directly through PassthroughCluster: no egress gateway sees it", True, PASSTHROUGH
        )

    def _fallback_listener(self) -> str:
        """Where a request for a host outside the registry lands: a port's catch-all, or 15001.

        A TLS port without a VIP is a shared 0.0.0.0_<port> listener with tls_inspector and one
        filter chain per SNI (tls.go buildSidecarOutboundTLSFilterChainOpts); an HTTP port a shared
        route config whose unmatched hosts take the allow_any/block_all virtual host (httproute.go);
        anything else meets the virtualOutbound listener on 15001 (listener_builder.go).
        """
        host, port = self.request.host, self.request.port
        entries = [e for e in self.config.registry if e.port(port)]
        if self.request.tls and any(not e.has_vip for e in entries):
            return f"0.0.0.0_{port}: no filter chain for SNI {host}"
        if not self.request.tls and any(e.port(port).is_http for e in entries):  # type: ignore[union-attr]
            return f"0.0.0.0_{port}, route config {port}: no virtual host for {host}"
        return f"virtualOutbound 0.0.0.0_15001: no listener for {host}:{port}"

    def _listener(self, entry: RegistryEntry, route: Route | None = None) -> str:
        """Which outbound listener takes the connection (listener.go buildSidecarOutboundListener):
        HTTP ports share 0.0.0.0_<port> and its route config; TCP ports listen on the entry's VIP
        when it has one; TLS ports without a VIP share 0.0.0.0_<port> with a filter chain per SNI."""
        port = self.request.port
        protocol = (entry.port(port) or _NO_PORT).protocol
        if not self.request.tls and protocol not in ("TCP", "TLS", "HTTPS"):
            return f"0.0.0.0_{port}, route config {port}"
        if not self.request.tls:
            addresses = [str(a) for a in (entry.entry.spec.get("addresses") or [])] if entry.entry else []
            where = f"{addresses[0].split('/')[0]}_{port}" if addresses else f"{entry.ref} ClusterIP:{port}"
            return f"{where}, tcp_proxy" if entry.has_vip else f"0.0.0.0_{port}, tcp_proxy"
        sni = ", ".join(route.sni_hosts()) if route else entry.host
        if entry.has_vip and route is None:
            # With a VIP the destination address picks the chain; the host name becomes an SNI
            # match only on the shared 0.0.0.0 listener (tls.go buildSidecarOutboundTLSFilterChainOpts).
            return f"{entry.ref} ClusterIP:{port}, tcp_proxy (the address decides, no SNI match)"
        where = f"0.0.0.0_{port}" if not entry.has_vip else f"{entry.ref} ClusterIP:{port}"
        return f"{where}, filter chain for SNI {sni}"

    def _mesh_route(self) -> tuple[Route | None, RegistryEntry | None]:
        """The first mesh rule for the request, and the registry entry that lets it apply.

        Sidecars open a listener per port of the registry's entries. A tls rule is attached to
        the listeners of the entries its VirtualService's hosts share names with, and matches by
        its own sniHosts; an http rule is a virtual host on the port's HTTP route config.
        """
        host, port = self.request.host, self.request.port
        # A TLS client's rule is a `tls` match on SNI (tls.go buildSidecarOutboundTLSFilterChainOpts:
        # the sniHosts become filter chain server_names); a plain one's an `http` virtual host
        # (httproute.go: VirtualService hosts become the virtual host's domains).
        kind = "tls" if self.request.tls else "http"
        serving = self.config.serving(host, port)
        http_ports = [e for e in self.config.registry if (e.port(port) or _NO_PORT).is_http]
        for route in self.config.routes():
            if route.kind != kind or MESH not in route.gateways or not route.destinations:
                continue
            if route.match_ports() and port not in route.match_ports():
                continue
            hosts = [fqdn(str(h), route.vs.namespace) for h in route.vs.spec.get("hosts") or []]
            if kind == "tls":
                if not any(covers(s, host) for s in route.sni_hosts()):
                    continue
                anchors = [e for h in hosts for e in self.config.in_registry(h) if e.port(port)]
            else:
                if not any(covers(h, host) for h in hosts):
                    continue
                anchors = serving + http_ports
            if anchors:
                return route, anchors[0]
        return None, (serving[0] if serving else None)

    def _route_text(self, route: Route) -> str:
        dest = route.destinations[0]
        conditions = [f"sniHosts {', '.join(route.sni_hosts())}"] if route.kind == "tls" else []
        if route.match_ports():
            conditions.append(f"port {', '.join(map(str, sorted(route.match_ports())))}")
        text = f"{route.kind}[{route.index}]" + (f" {', '.join(conditions)}" if conditions else "")
        text += f" -> {dest.get('host')}"
        if dest.get("subset"):
            text += f" subset {dest['subset']}"
        if len(route.destinations) > 1:
            text += f" (+{len(route.destinations) - 1} more by weight)"
        return text

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
            return self.end(f"fails at the {proxy}: no cluster for {host}; {self.request.dropped('NR')}", False)
        # Cluster names are outbound|<port>|<subset>|<host> (pilot/pkg/model/service.go
        # BuildSubsetKey); a subset's cluster holds the host's endpoints that carry the subset's
        # labels (cluster_builder.go buildSubsetCluster), and its TLS settings come from the most
        # specific DestinationRule policy: subset port level, subset, rule port level, rule
        # (cluster_traffic_policy.go, cluster_tls.go applyUpstreamTLSSettings).
        name = f"outbound|{port}|{subset or ''}|{host}"
        labels: dict[str, str] = {}
        if subset:
            found = self.config.subset(host, str(subset))
            if found is None:
                hop.add("cluster", name, "registry", f"no DestinationRule defines subset {subset} (KIA1107)")
                return self.end(
                    f"fails at the {proxy}: the subset's cluster does not exist; {self.request.dropped('NR')}",
                    False,
                )
            labels = {k: str(v) for k, v in (found[1].get("labels") or {}).items()}
        mode, rule = self.config.tls_mode(host, subset, port)
        why = f"subset {subset} selects {_labels(labels)}" if subset else "the host's own cluster"
        if mode:
            why += f"; TLS {mode}"
        hop.add("cluster", name + (f" over {mode}" if mode else ""), rule.ref if rule else entry.ref, why)
        workloads = self.config.endpoints(entry)
        if workloads is None and proxy == "gateway" and entry.resolution == "NONE":
            return self._no_original_destination(hop, entry, name)
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
            return self.end(f"fails at the {proxy}: no healthy upstream; {self.request.dropped('UH')}", False)
        names = ", ".join(f"{w.namespace}/{w.name}" for w in chosen)
        hop.add("endpoints", f"{names} port {target}", entry.ref, f"port {port} -> {target}")
        gateway = next((w for w in chosen if w.proxy == "gateway"), None)
        if gateway is not None:
            return self.gateway(gateway, port, target, mode)
        return self.end(f"reaches {names} inside the mesh", True, DIRECT)

    def _no_original_destination(self, hop: Hop, entry: RegistryEntry, name: str) -> None:
        """A gateway's route to a `resolution: NONE` host.

        A sidecar's cluster for such a host is ORIGINAL_DST: it connects to the address the app
        dialled. A gateway cannot use one: "Gateways cannot use passthrough clusters. So fallback
        to EDS" (istio/istio@1.23.2:pilot/pkg/networking/core/cluster.go convertResolution), and a
        NONE ServiceEntry has no endpoints to fill it. The address the sidecar dialled is the
        gateway itself anyway, so forwarding to it could only loop (the wildcard egress task:
        istio.io/latest/docs/tasks/traffic-management/egress/wildcard-egress-hosts/).
        """
        why = (
            "resolution NONE: a gateway builds an EDS cluster (it cannot use the original "
            "destination, which is the gateway itself), and a NONE ServiceEntry has no endpoints (LAB0203)"
        )
        hop.add("endpoints", "none", entry.ref, why)
        return self.end(
            f"dropped by the gateway: {name} has no endpoints; {self.request.dropped('UH')}", False
        )

    def upstream(self, hop: Hop, entry: RegistryEntry, port: int, mode: str | None) -> None:
        mapped = entry.port(port)
        target = mapped.target_port if mapped else port
        host = self.request.host if entry.host.startswith("*") else entry.host
        # The cluster type follows the resolution (istio/istio@1.23.2:pilot/pkg/networking/core/
        # cluster.go convertResolution): DNS -> STRICT_DNS, DNS_ROUND_ROBIN -> LOGICAL_DNS,
        # STATIC -> EDS of the entry's endpoints, NONE -> ORIGINAL_DST at a sidecar.
        if entry.service is not None:
            addresses = self.config.endpoint_addresses(entry.service)
            if not addresses:
                why = f"no selector and no Endpoints object {entry.service.name}: the cluster is empty"
                hop.add("endpoints", "none", entry.ref, why)
                return self.end(f"fails at the sidecar: no healthy upstream; {self.request.dropped('UH')}", False)
            host, target = addresses[0], port
            how = f"no selector: the addresses of Endpoints {entry.namespace}/{entry.service.name} ({', '.join(addresses)})"
        elif entry.resolution in ("DNS", "DNS_ROUND_ROBIN"):
            how = f"resolution {entry.resolution}: {host} looked up by the proxy"
        elif entry.resolution == "STATIC":
            how = "resolution STATIC: the ServiceEntry's endpoints"
        else:
            host = self.request.host
            how = "resolution NONE: the address the app dialled (original destination)"
        if mode in ("SIMPLE", "MUTUAL"):
            how += f"; the proxy originates TLS ({mode})"
        last = self.hop("upstream", f"{host}:{target}")
        last.add("upstream", f"{host}:{target}", entry.ref, how)
        via = next((h.where for h in self.path.hops if h.proxy == "egress gateway"), None)
        through = f" through the egress gateway {via}" if via else " directly from the sidecar"
        return self.end(f"reaches {host}:{target}{through}", True, EGRESS_GATEWAY if via else DIRECT)

    # --- the gateway --------------------------------------------------------------------------
    def gateway(self, workload: Workload, port: int, target: int | str, incoming: str | None) -> None:
        where = f"{workload.namespace}/{workload.name}"
        # The gateway's listeners are the servers of every Gateway that selects it, merged by port
        # (pilot/pkg/model/gateway.go mergeGateways); the listener binds the server port's
        # targetPort on the pod, so the sidecar's 443 arrives on 8443 (gateway.go buildGatewayListeners).
        if any(h.proxy == "egress gateway" and h.where == where for h in self.path.hops):
            return self.end(
                f"loops: the gateway {where} routes the request back to itself; {self.request.dropped('UF')}",
                False,
            )
        hop = self.hop("egress gateway", where)
        found = self._server(workload, port, target)
        if found is None:
            hop.add(
                "listener",
                f"none on {target}",
                "Gateways",
                f"no Gateway selecting {workload.ref} has a server on port {port} or {target}",
            )
            return self.end(f"refused by the gateway: nothing listens there; {self.request.dropped('NR')}", False)
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
        # An ISTIO_MUTUAL server terminates the mesh's mTLS (gateway.go buildGatewayListenerTLSContext);
        # the client side sends it only when its DestinationRule says ISTIO_MUTUAL or auto mTLS
        # picks it (cluster_tls.go applyUpstreamTLSSettings), and a passthrough server reads the
        # SNI the client sent, which an Istio mTLS connection replaces with outbound_.<port>_...
        if incoming is None and mode == "ISTIO_MUTUAL":
            why = "no DestinationRule sets ISTIO_MUTUAL: works only if auto mTLS applies (LAB0301)"
            hop.add("tls", "auto mTLS expected", gateway.ref, why)
        elif (incoming == "ISTIO_MUTUAL") != (mode == "ISTIO_MUTUAL"):
            why = f"the server expects {mode or 'plain traffic'} (LAB0301/LAB0302)"
            hop.add("tls", f"client sends {incoming or 'no Istio mTLS'}", gateway.ref, why)
            return self.end(
                f"fails at the gateway: sidecar and gateway disagree on TLS; {self.request.dropped('UF')}", False
            )
        elif mode == "ISTIO_MUTUAL":
            inside = f"the app's own TLS (SNI {self.request.host}) stays inside"
            hop.add("tls", "terminates the mesh mTLS", gateway.ref, inside)
        kind = route_kind(server)
        route = self._gateway_route(gateway, number, kind)
        if route is None:
            code = " (LAB0201)" if kind == "tls" else ""
            hop.add(
                "route",
                "none",
                gateway.ref,
                f"no VirtualService {kind} rule is bound to it on port {number}{code}",
            )
            # NR: no route (HTTP), or no filter chain for the connection (Istio's listener access
            # log keeps exactly these: istio/istio@1.23.2:pilot/pkg/networking/core/accesslog.go).
            return self.end(
                f"dropped by the gateway: no route for this traffic; {self.request.dropped('NR')}", False
            )
        dest = route.destinations[0]
        host = fqdn(str(dest.get("host")), route.vs.namespace)
        dest_port = (dest.get("port") or {}).get("number") or number
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
            return self.envoy_cluster(hop, workload, patches, cluster, self.request.port)
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
        """The first rule bound to this Gateway that routes the server's traffic.

        model/push_context.go VirtualServicesForGateway, then gateway.go pickMatchingGatewayHosts (the VirtualService's
        hosts must meet the server's), then the rule's match: l4MultiMatch / l4SingleMatch on port
        and gateway name for tcp and tls (tls also by sniHosts), buildGatewayHTTPRouteConfig's
        virtual hosts for http.
        """
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
    def envoy_cluster(
        self, hop: Hop, workload: Workload, patches: envoy.ProxyPatches, cluster: str, port: int
    ) -> None:
        """Follow a cluster an EnvoyFilter added: to an internal listener or out by SNI.

        The patches are applied as istiod does (pilot/pkg/networking/core/envoyfilter/
        cluster_patch.go InsertedClusters, listener_patch.go ApplyListenerPatches for the MERGE on
        tcp_proxy); what the added objects then do is Envoy's: an `envoy_internal_address`
        endpoint hands the connection to the internal listener of that name, whose filter chains
        match `server_names` against the SNI the tls_inspector read, and the
        sni_dynamic_forward_proxy plus a dynamic_forward_proxy cluster resolve the SNI by DNS
        (Envoy docs: internal_listener, sni_dynamic_forward_proxy, dynamic_forward_proxy cluster).
        """
        added = patches.clusters.get(cluster)
        gateway = f"{workload.namespace}/{workload.name}"
        if added is not None and patches.is_forward_proxy(cluster):
            target = f"{self.request.host}:{port}"
            last = self.hop("upstream", target)
            last.add("upstream", target, added.by.ref, "dynamic forward proxy: DNS lookup of the SNI")
            return self.end(f"reaches {target} through the egress gateway {gateway}", True, EGRESS_GATEWAY)
        listener = patches.internal_listener_of(cluster)
        if (
            added is None
            or listener is None
            or any(h.where.startswith(f"{listener} ") for h in self.path.hops)
        ):
            hop.add("cluster", cluster, "EnvoyFilter", "a cluster this analyzer cannot follow")
            return self.end(f"unknown: the gateway sends to {cluster}", False)
        inner = self.hop("internal listener", f"{listener} in {gateway}")
        chain = patches.sni_chain(listener, self.request.host)
        if chain is None:
            why = f"no filter chain of {listener} matches SNI {self.request.host}"
            inner.add("filter chain", "none", added.by.ref, why)
            return self.end(
                f"dropped by the gateway: {listener} refuses {self.request.host}; {self.request.dropped('NR')}",
                False,
            )
        filters, by = chain[0], chain[1].by.ref
        names = ", ".join(
            map(str, envoy.items(envoy.dig(filters, "filter_chain_match", "server_names")) or ["*"])
        )
        inner.add("filter chain", f"server_names {names}", by, f"tls_inspector reads SNI {self.request.host}")
        dfp = envoy.filter_named(filters, envoy.SNI_DFP)
        if dfp is not None:
            value = envoy.dig(dfp, "typed_config", "port_value")
            port = value if isinstance(value, int) else port
            why = "the upstream is the SNI, resolved per connection"
            inner.add("filter", f"sni_dynamic_forward_proxy port {port}", by, why)
        tcp_proxy = envoy.filter_named(filters, envoy.TCP_PROXY)
        next_cluster = str(envoy.dig(tcp_proxy, "typed_config", "cluster") or "")
        inner.add("cluster", next_cluster, by, "tcp_proxy of the matching filter chain")
        return self.envoy_cluster(inner, workload, patches, next_cluster, port)

    def _target(self) -> str:
        return f"{self.request.host}:{self.request.port}"


def _labels(labels: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "every pod (no labels)"


def _selector(gateway: Resource) -> dict[str, Any]:
    return gateway.spec.get("selector") or {}
