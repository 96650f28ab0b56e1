"""The model the rules and the explainer read: the lab's inventory plus the manifests.

Manifests override what `up` installed (a re-declared Service replaces the installed one), and
ServiceEntries join the Services in the registry, as istiod would see them once applied.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from lab.analyzer.hosts import fqdn, specificity
from lab.analyzer.inventory import (
    Inventory,
    Port,
    Service,
    Workload,
    protocol_of,
    proxy_of,
    selects,
    service_ports,
)
from lab.analyzer.resources import Resource

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Pod")
ROUTE_KINDS = ("http", "tls", "tcp")
MESH = "mesh"


@dataclass(frozen=True)
class RegistryEntry:
    """One host in istiod's registry: from a Kubernetes Service or a ServiceEntry."""

    host: str
    namespace: str
    ports: tuple[Port, ...]
    ref: str  # "Service ns/name" or "ServiceEntry ns/name"
    service: Service | None = None  # for Kubernetes Services
    entry: Resource | None = None  # for ServiceEntries

    @property
    def resolution(self) -> str:
        if self.entry is None:
            return "CLUSTER_IP"
        return str(self.entry.spec.get("resolution") or "NONE")

    @property
    def has_vip(self) -> bool:
        return self.entry is None or bool(self.entry.spec.get("addresses"))

    def port(self, number: int) -> Port | None:
        return next((p for p in self.ports if p.number == number), None)


@dataclass(frozen=True)
class Route:
    """One http/tls/tcp rule of a VirtualService and the destinations it sends to."""

    vs: Resource
    kind: str  # "http", "tls" or "tcp"
    index: int
    rule: dict[str, Any]

    @cached_property
    def matches(self) -> list[dict[str, Any]]:
        return [m for m in self.rule.get("match") or [] if isinstance(m, dict)]

    @cached_property
    def destinations(self) -> list[dict[str, Any]]:
        routes = self.rule.get("route") or []
        return [r["destination"] for r in routes if isinstance(r, dict) and r.get("destination")]

    @cached_property
    def gateways(self) -> set[str]:
        """Where this rule applies: "mesh" and/or Gateways as `ns/name`.

        A match that names gateways narrows the VirtualService's list; a rule with any match
        that names none applies on all of the VirtualService's gateways.
        """
        ns = self.vs.namespace
        listed = {gateway_ref(g, ns) for g in self.vs.spec.get("gateways") or [MESH]}
        if not self.matches or any(not m.get("gateways") for m in self.matches):
            return listed
        return {gateway_ref(g, ns) for m in self.matches for g in m["gateways"]}

    def match_ports(self) -> set[int]:
        """The ports this rule's matches name (empty: any port)."""
        ports = {m.get("port") for m in self.matches}
        return set() if None in ports or not ports else {p for p in ports if isinstance(p, int)}

    def sni_hosts(self) -> list[str]:
        return [str(h) for m in self.matches for h in m.get("sniHosts") or []]


def selector_key(gateway: Resource) -> tuple[tuple[str, str], ...]:
    selector = gateway.spec.get("selector") or {}
    return tuple(sorted((str(k), str(v)) for k, v in selector.items()))


def gateway_ref(ref: str, namespace: str) -> str:
    """A VirtualService's gateway name as `ns/name`; unqualified names are in its namespace."""
    if ref == MESH or "/" in ref:
        return ref
    if "." in ref:  # the deprecated `name.namespace.svc.cluster.local` form
        name, ns = ref.split(".")[:2]
        return f"{ns}/{name}"
    return f"{namespace}/{ref}"


class HostIndex:
    """Items by host pattern, so that a lookup costs the labels of one name, not the whole list.

    Every item is filed under its pattern and under each of its dot-suffixes (`.wikipedia.org`,
    `.org`): a concrete query looks up the wildcards that cover it (`*.wikipedia.org`, `*.org`,
    `*`), a wildcard query also the names it covers. Same answers as hosts.covers/overlaps over
    the whole list, in the order the items were added.
    """

    def __init__(self, items: Iterable[tuple[str, Any]]) -> None:
        self.exact: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        self.by_suffix: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        for order, (host, item) in enumerate(items):
            self.exact[host].append((order, item))
            for at, char in enumerate(host):
                if char == ".":
                    self.by_suffix[host[at:]].append((order, item))

    def covering(self, host: str) -> list[Any]:
        """Items whose pattern covers `host` (hosts.covers(pattern, host))."""
        return _ordered(self._covering(host))

    def overlapping(self, host: str) -> list[Any]:
        """Items whose pattern shares a name with `host` (hosts.overlaps)."""
        found = self._covering(host)
        if host == "*":
            found += [pair for pairs in self.exact.values() for pair in pairs]
        elif host.startswith("*."):
            found += self.by_suffix.get(host[1:], ())
        return _ordered(found)

    def _covering(self, host: str) -> list[tuple[int, Any]]:
        found = list(self.exact.get(host, ())) + list(self.exact.get("*", ()))
        wildcard = host.startswith("*.")
        labels = (host[2:] if wildcard else host).split(".")
        for i in range(0 if wildcard else 1, len(labels)):
            pattern = "*." + ".".join(labels[i:])
            if pattern != host:
                found += self.exact.get(pattern, ())
        return found


def _ordered(pairs: list[tuple[int, Any]]) -> list[Any]:
    seen: dict[int, Any] = {}
    for order, item in pairs:
        seen.setdefault(order, item)
    return [seen[o] for o in sorted(seen)]


@dataclass
class Config:
    inventory: Inventory
    resources: list[Resource]
    registry: list[RegistryEntry] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Indexes built once: every lookup below costs about the same whatever the input's size,
        # so the analyzer grows linearly with the number of documents (bench/analyze_scale.py).
        self._by_kind: dict[str, list[Resource]] = defaultdict(list)
        self._by_key: dict[tuple[str, str, str], Resource] = {}
        self._by_namespace: dict[tuple[str, str], list[Resource]] = defaultdict(list)
        self.memo: dict[tuple[str, ...], Any] = {}  # for derived views, e.g. envoy.patches_for
        for r in self.resources:
            self._by_kind[r.kind].append(r)
            self._by_namespace[(r.kind, r.namespace)].append(r)
            self._by_key.setdefault((r.kind, r.namespace, r.name), r)
        self.namespaces = {**self.inventory.namespaces, **self._declared_namespaces()}
        self.services = _merge_services(list(self.inventory.services), self._manifest_services())
        self.workloads = _merge_workloads(list(self.inventory.workloads), self._manifest_workloads())
        self.registry = [
            RegistryEntry(s.host, s.namespace, s.ports, f"Service {s.namespace}/{s.name}", s)
            for s in self.services
        ] + [entry for se in self.of_kind("ServiceEntry") for entry in _entries(se)]
        self._registry = HostIndex((e.host, e) for e in self.registry)
        self._first_entry: dict[str, RegistryEntry] = {}
        for e in self.registry:
            self._first_entry.setdefault(e.host, e)
        self._routes = [
            Route(vs, kind, index, rule)
            for vs in self.of_kind("VirtualService")
            for kind in ROUTE_KINDS
            for index, rule in enumerate(vs.spec.get(kind) or [])
            if isinstance(rule, dict)
        ]
        self._routes_of: dict[int, list[Route]] = defaultdict(list)
        self._routes_on: dict[str, list[Route]] = defaultdict(list)
        self._routes_to: dict[str, list[tuple[Route, dict[str, Any]]]] = defaultdict(list)
        for route in self._routes:
            self._routes_of[id(route.vs)].append(route)
            for ref in route.gateways:
                self._routes_on[ref].append(route)
            for dest in route.destinations:
                self._routes_to[fqdn(str(dest.get("host")), route.vs.namespace)].append((route, dest))
        self._rules = HostIndex(
            (fqdn(str(dr.spec.get("host", "")), dr.namespace), dr) for dr in self.of_kind("DestinationRule")
        )
        self._by_label: dict[tuple[str, str], list[Workload]] = defaultdict(list)
        for w in self.workloads:
            for pair in w.labels.items():
                self._by_label[pair].append(w)
        self._gateways_named: dict[str, list[Resource]] = defaultdict(list)
        for gateway in self.of_kind("Gateway"):
            self._gateways_named[gateway.name].append(gateway)
        # Gateways are grouped by selector: many Gateways usually share a few selectors, and a
        # selector picks workloads in every namespace, so per-Gateway lists would cost G x W.
        self._selected_by: dict[tuple[tuple[str, str], ...], list[Workload]] = {}
        self._gateways_by_selector: dict[tuple[tuple[str, str], ...], list[Resource]] = defaultdict(list)
        for gateway in self.of_kind("Gateway"):
            self._gateways_by_selector[selector_key(gateway)].append(gateway)
        self._services_in: dict[str, list[Service]] = defaultdict(list)
        for s in self.services:
            self._services_in[s.namespace].append(s)

    # --- resources --------------------------------------------------------------------------
    def of_kind(self, kind: str) -> list[Resource]:
        return self._by_kind.get(kind, [])

    def in_namespace(self, kind: str, namespace: str) -> list[Resource]:
        return self._by_namespace.get((kind, namespace), [])

    def find(self, kind: str, namespace: str, name: str) -> Resource | None:
        return self._by_key.get((kind, namespace, name))

    def gateways_named(self, name: str) -> list[Resource]:
        return self._gateways_named.get(name, [])

    def routes(self) -> list[Route]:
        return self._routes

    def routes_of(self, vs: Resource) -> list[Route]:
        return self._routes_of.get(id(vs), [])

    def routes_on(self, ref: str) -> list[Route]:
        """The rules that apply on `mesh` or on the Gateway `ns/name`."""
        return self._routes_on.get(ref, [])

    def routes_to(self, host: str) -> list[tuple[Route, dict[str, Any]]]:
        """The rules (and their destination) that send to `host`, by the destination's FQDN."""
        return self._routes_to.get(host, [])

    # --- registry ---------------------------------------------------------------------------
    def in_registry(self, host: str) -> list[RegistryEntry]:
        """Entries whose hosts share a name with `host` (either may be a wildcard)."""
        return self._registry.overlapping(host)

    def entry_for(self, host: str) -> RegistryEntry | None:
        """The entry a route destination names: Istio looks destinations up by exact host."""
        return self._first_entry.get(host)

    def serving(self, host: str, port: int) -> list[RegistryEntry]:
        """Entries a request for concrete `host`:`port` can match, most specific first."""
        found = [e for e in self._registry.covering(host) if e.port(port)]
        # A connection to a ServiceEntry address meets that entry's <address>_<port> listener
        # first (istio/istio@1.23.2:pilot/pkg/networking/core/listener.go: TCP ports listen on
        # the service VIP when there is one).
        return self.by_address(host, port) + sorted(found, key=lambda e: specificity(e.host))

    # --- workloads --------------------------------------------------------------------------
    def endpoints(self, entry: RegistryEntry) -> list[Workload] | None:
        """The workloads behind an entry, or None when its endpoints are not workloads.

        A Service without a selector takes its endpoints from an Endpoints object of its name
        (kube-controller-manager leaves those alone): addresses, not workloads.
        """
        if entry.service is not None:
            if not entry.service.selector:
                return None
            return self.selected(entry.service.selector, entry.namespace)
        selector = (entry.entry.spec.get("workloadSelector") or {}).get("labels") if entry.entry else None
        return self.selected(selector, entry.namespace) if selector else None

    def endpoint_labels(self, entry: RegistryEntry) -> list[dict[str, str]]:
        workloads = self.endpoints(entry)
        if workloads is not None:
            return [w.labels for w in workloads]
        if entry.entry is None:  # a selector-less Service: Endpoints carry no labels
            return []
        return [dict(e.get("labels") or {}) for e in entry.entry.spec.get("endpoints") or []]

    def endpoint_addresses(self, service: Service) -> list[str]:
        """The IPs of the Endpoints object a selector-less Service uses."""
        found = self.find("Endpoints", service.namespace, service.name)
        subsets = found.data.get("subsets") if found is not None else None
        return [
            str(address["ip"])
            for subset in subsets or []
            if isinstance(subset, dict)
            for address in subset.get("addresses") or []
            if isinstance(address, dict) and address.get("ip")
        ]

    def by_address(self, address: str, port: int) -> list[RegistryEntry]:
        """ServiceEntries whose `addresses` (IPs or CIDRs) hold `address`, with this port."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return []
        found = []
        for se in self.of_kind("ServiceEntry"):
            for text in se.spec.get("addresses") or []:
                try:
                    network = ipaddress.ip_network(str(text), strict=False)
                except ValueError:
                    continue
                if ip in network:
                    found += [e for e in _entries(se) if e.port(port)]
                    break
        return found

    def selected(self, selector: dict[str, str] | None, namespace: str | None) -> list[Workload]:
        if not selector:
            return []
        first = next(iter(selector.items()))
        candidates = self._by_label.get((str(first[0]), str(first[1])), [])
        return [
            w
            for w in candidates
            if (namespace is None or w.namespace == namespace) and selects(selector, w.labels)
        ]

    def gateway_workloads(self, gateway: Resource) -> list[Workload]:
        """Workloads a Gateway configures: its selector, in every namespace (Istio's default)."""
        key = selector_key(gateway)
        known = self._selected_by.get(key)
        if known is None:
            if not key:
                known = [w for w in self.workloads if w.proxy == "gateway"]
            else:
                known = self.selected(dict(key), None)
            self._selected_by[key] = known
        return known

    def gateway_groups(self) -> list[list[Resource]]:
        """The Gateways, grouped by selector (each group configures the same workloads)."""
        return list(self._gateways_by_selector.values())

    def services_of(self, workload: Workload) -> list[Service]:
        return [s for s in self._services_in.get(workload.namespace, []) if selects(s.selector, workload.labels)]

    def gateways_of(self, workload: Workload) -> list[Resource]:
        found: list[Resource] = []
        for group in self.gateway_groups():
            if workload in self.gateway_workloads(group[0]):
                found += group
        return found

    # --- destination rules ------------------------------------------------------------------
    def destination_rules(self, host: str) -> list[Resource]:
        """DestinationRules for a host, most specific first."""
        key = ("rules", host)
        known = self.memo.get(key)
        if known is None:
            found = self._rules.covering(host)
            known = sorted(found, key=lambda dr: specificity(fqdn(dr.spec["host"], dr.namespace)))
            self.memo[key] = known
        return known

    def subset(self, host: str, name: str) -> tuple[Resource, dict[str, Any]] | None:
        for dr in self.destination_rules(host):
            for subset in dr.spec.get("subsets") or []:
                if isinstance(subset, dict) and subset.get("name") == name:
                    return dr, subset
        return None

    def tls_mode(self, host: str, subset: str | None, port: int) -> tuple[str | None, Resource | None]:
        """The TLS mode a client uses towards host/subset/port, and the DestinationRule setting it.

        Most specific first: the subset's port-level setting, the subset's policy, then the same
        two of the rule's top-level policy.
        """
        for dr in self.destination_rules(host):
            policies = []
            if subset:
                for item in dr.spec.get("subsets") or []:
                    if isinstance(item, dict) and item.get("name") == subset:
                        policies.append(item.get("trafficPolicy") or {})
            policies.append(dr.spec.get("trafficPolicy") or {})
            for policy in policies:
                mode = _port_tls(policy, port) or (policy.get("tls") or {}).get("mode")
                if mode:
                    return str(mode), dr
            return None, dr
        return None, None

    # --- manifests as inventory -------------------------------------------------------------
    def _declared_namespaces(self) -> dict[str, dict[str, str]]:
        return {
            ns.name: {k: str(v) for k, v in (ns.metadata.get("labels") or {}).items()}
            for ns in self.of_kind("Namespace")
        }

    def _manifest_services(self) -> list[Service]:
        return [
            Service(
                r.namespace,
                r.name,
                r.spec.get("selector"),
                service_ports(r.spec),
                "manifest",
                str(r.spec["externalName"]) if r.spec.get("type") == "ExternalName" else None,
            )
            for r in self.of_kind("Service")
        ]

    def _manifest_workloads(self) -> list[Workload]:
        workloads = []
        for r in self.resources:
            if r.kind not in WORKLOAD_KINDS:
                continue
            pod = r.data if r.kind == "Pod" else (r.spec.get("template") or {})
            meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
            labels = {k: str(v) for k, v in (meta.get("labels") or {}).items()}
            proxy = proxy_of(spec, meta.get("annotations") or {}) or self._injected(r, labels)
            account = str(spec.get("serviceAccountName") or "")  # "": not set (see _merge_workloads)
            workloads.append(Workload(r.kind, r.namespace, r.name, labels, account, proxy, "manifest"))
        return workloads

    def _injected(self, resource: Resource, labels: dict[str, str]) -> str | None:
        """Sidecar injection: the pod's label wins over its namespace's label."""
        if labels.get("sidecar.istio.io/inject") == "false":
            return None
        namespace_labels = self.namespaces.get(resource.namespace, {})
        enabled = labels.get("sidecar.istio.io/inject") == "true" or (
            namespace_labels.get("istio-injection") == "enabled"
        )
        return "sidecar" if enabled else None


# `invoke up` creates the installed objects with server-side apply (`istioctl install`), so they
# carry no `kubectl.kubernetes.io/last-applied-configuration`. A later client-side `kubectl apply`
# of the same object is then a three-way strategic merge whose "original" is empty: it removes
# nothing (kubernetes/kubectl@release-1.30 pkg/cmd/apply/patcher.go, CreateThreeWayMergePatch).
# Lists merge by their patch merge key (Service ports by `port`, containers by `name`, container
# ports by `containerPort`: k8s.io/api@v0.30 core/v1/types.go); lists without one, such as a
# container's `args`, are replaced; maps (labels, selectors) merge key by key.
def _merge_services(installed: list[Service], declared: list[Service]) -> list[Service]:
    merged = {(s.namespace, s.name): s for s in installed}
    added: list[Service] = []
    for d in declared:
        live = merged.get((d.namespace, d.name))
        if live is None:
            added.append(d)
            continue
        ports = {p.number: p for p in live.ports}
        for port in d.ports:
            old = ports.get(port.number)
            ports[port.number] = port if old is None else _merge_port(old, port)
        selector = {**(live.selector or {}), **(d.selector or {})} or None
        merged[(d.namespace, d.name)] = Service(
            d.namespace, d.name, selector, tuple(ports.values()), "merged", d.external_name or live.external_name
        )
    return list(merged.values()) + added


def _merge_port(old: Port, new: Port) -> Port:
    name = new.name or old.name
    protocol = new.protocol if new.name else old.protocol
    return Port(old.number, name, protocol, new.target if new.target is not None else old.target)


def _merge_workloads(installed: list[Workload], declared: list[Workload]) -> list[Workload]:
    merged = {(w.kind, w.namespace, w.name): w for w in installed}
    added: list[Workload] = []
    for d in declared:
        live = merged.get((d.kind, d.namespace, d.name))
        if live is None:
            added.append(d if d.service_account else _with_account(d, "default"))
            continue
        merged[(d.kind, d.namespace, d.name)] = Workload(
            d.kind,
            d.namespace,
            d.name,
            {**live.labels, **d.labels},
            d.service_account or live.service_account,
            d.proxy or live.proxy,
            "merged",
        )
    return list(merged.values()) + added


def _with_account(w: Workload, account: str) -> Workload:
    return Workload(w.kind, w.namespace, w.name, w.labels, account, w.proxy, w.origin)


def _entries(se: Resource) -> list[RegistryEntry]:
    ports = tuple(
        Port(
            number=p["number"],
            name=str(p.get("name", "")),
            protocol=str(p.get("protocol") or protocol_of(str(p.get("name", "")))).upper(),
            target=p.get("targetPort"),
        )
        for p in se.spec.get("ports") or []
        if isinstance(p, dict) and isinstance(p.get("number"), int)
    )
    return [
        RegistryEntry(fqdn(host, se.namespace), se.namespace, ports, se.ref, entry=se)
        for host in se.spec.get("hosts") or []
    ]


def _port_tls(policy: dict[str, Any], port: int) -> str | None:
    for setting in policy.get("portLevelSettings") or []:
        if isinstance(setting, dict) and (setting.get("port") or {}).get("number") == port:
            mode = (setting.get("tls") or {}).get("mode")
            if mode:
                return str(mode)
    return None
