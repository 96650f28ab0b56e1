"""The model the rules and the explainer read: the lab's inventory plus the manifests.

Manifests override what `up` installed (a re-declared Service replaces the installed one), and
ServiceEntries join the Services in the registry, as istiod would see them once applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lab.analyzer.hosts import covers, fqdn, overlaps, specificity
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

    @property
    def matches(self) -> list[dict[str, Any]]:
        return [m for m in self.rule.get("match") or [] if isinstance(m, dict)]

    @property
    def destinations(self) -> list[dict[str, Any]]:
        routes = self.rule.get("route") or []
        return [r["destination"] for r in routes if isinstance(r, dict) and r.get("destination")]

    @property
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


def gateway_ref(ref: str, namespace: str) -> str:
    """A VirtualService's gateway name as `ns/name`; unqualified names are in its namespace."""
    if ref == MESH or "/" in ref:
        return ref
    if "." in ref:  # the deprecated `name.namespace.svc.cluster.local` form
        name, ns = ref.split(".")[:2]
        return f"{ns}/{name}"
    return f"{namespace}/{ref}"


@dataclass
class Config:
    inventory: Inventory
    resources: list[Resource]
    registry: list[RegistryEntry] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.namespaces = {**self.inventory.namespaces, **self._declared_namespaces()}
        self.services = _override(list(self.inventory.services), self._manifest_services())
        self.workloads = _override(list(self.inventory.workloads), self._manifest_workloads())
        self.registry = [
            RegistryEntry(s.host, s.namespace, s.ports, f"Service {s.namespace}/{s.name}", s)
            for s in self.services
        ] + [entry for se in self.of_kind("ServiceEntry") for entry in _entries(se)]

    # --- resources --------------------------------------------------------------------------
    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources if r.kind == kind]

    def find(self, kind: str, namespace: str, name: str) -> Resource | None:
        return next((r for r in self.of_kind(kind) if (r.namespace, r.name) == (namespace, name)), None)

    def routes(self) -> Iterator[Route]:
        for vs in self.of_kind("VirtualService"):
            for kind in ROUTE_KINDS:
                for index, rule in enumerate(vs.spec.get(kind) or []):
                    if isinstance(rule, dict):
                        yield Route(vs, kind, index, rule)

    # --- registry ---------------------------------------------------------------------------
    def in_registry(self, host: str) -> list[RegistryEntry]:
        """Entries whose hosts share a name with `host` (either may be a wildcard)."""
        return [e for e in self.registry if overlaps(e.host, host)]

    def entry_for(self, host: str) -> RegistryEntry | None:
        """The entry a route destination names: Istio looks destinations up by exact host."""
        return next((e for e in self.registry if e.host == host), None)

    def serving(self, host: str, port: int) -> list[RegistryEntry]:
        """Entries a request for concrete `host`:`port` can match, most specific first."""
        found = [e for e in self.registry if covers(e.host, host) and e.port(port)]
        return sorted(found, key=lambda e: specificity(e.host))

    # --- workloads --------------------------------------------------------------------------
    def endpoints(self, entry: RegistryEntry) -> list[Workload] | None:
        """The workloads behind an entry, or None when its endpoints are not workloads."""
        if entry.service is not None:
            return self.selected(entry.service.selector, entry.namespace)
        selector = (entry.entry.spec.get("workloadSelector") or {}).get("labels") if entry.entry else None
        return self.selected(selector, entry.namespace) if selector else None

    def endpoint_labels(self, entry: RegistryEntry) -> list[dict[str, str]]:
        workloads = self.endpoints(entry)
        if workloads is not None:
            return [w.labels for w in workloads]
        assert entry.entry is not None
        return [dict(e.get("labels") or {}) for e in entry.entry.spec.get("endpoints") or []]

    def selected(self, selector: dict[str, str] | None, namespace: str | None) -> list[Workload]:
        return [
            w
            for w in self.workloads
            if (namespace is None or w.namespace == namespace) and selects(selector, w.labels)
        ]

    def gateway_workloads(self, gateway: Resource) -> list[Workload]:
        """Workloads a Gateway configures: its selector, in every namespace (Istio's default)."""
        selector = gateway.spec.get("selector")
        if not selector:
            return [w for w in self.workloads if w.proxy == "gateway"]
        return self.selected(selector, None)

    def services_of(self, workload: Workload) -> list[Service]:
        return [
            s
            for s in self.services
            if s.namespace == workload.namespace and selects(s.selector, workload.labels)
        ]

    def gateways_of(self, workload: Workload) -> list[Resource]:
        return [g for g in self.of_kind("Gateway") if workload in self.gateway_workloads(g)]

    # --- destination rules ------------------------------------------------------------------
    def destination_rules(self, host: str) -> list[Resource]:
        """DestinationRules for a host, most specific first."""
        found = [
            dr
            for dr in self.of_kind("DestinationRule")
            if covers(fqdn(str(dr.spec.get("host", "")), dr.namespace), host)
        ]
        return sorted(found, key=lambda dr: specificity(fqdn(dr.spec["host"], dr.namespace)))

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
            Service(r.namespace, r.name, r.spec.get("selector"), service_ports(r.spec), "manifest")
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
            account = str(spec.get("serviceAccountName") or "default")
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


def _override(installed: list[Any], declared: list[Any]) -> list[Any]:
    """Declared objects replace installed ones of the same kind, namespace and name."""
    keys = {(getattr(d, "kind", "Service"), d.namespace, d.name) for d in declared}
    kept = [i for i in installed if (getattr(i, "kind", "Service"), i.namespace, i.name) not in keys]
    return kept + declared


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
