"""The lab as `invoke up` leaves it: namespaces, workloads, Services and mesh settings.

The offline analyzer reads it from `inventory.yaml`; `--live` builds it from the cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from lab.analyzer.hosts import service_host

INVENTORY_FILE = Path(__file__).with_name("inventory.yaml")

ALLOW_ANY = "ALLOW_ANY"
REGISTRY_ONLY = "REGISTRY_ONLY"

# Istio's protocol selection: the port name's prefix (or appProtocol) names the protocol.
_PROTOCOLS = {
    "http": "HTTP",
    "http2": "HTTP2",
    "grpc": "GRPC",
    "grpc-web": "GRPC-WEB",
    "https": "HTTPS",
    "tls": "TLS",
    "tcp": "TCP",
    "mongo": "MONGO",
    "mysql": "MYSQL",
    "redis": "REDIS",
    "udp": "UDP",
}
HTTP_PROTOCOLS = frozenset({"HTTP", "HTTP2", "GRPC", "GRPC-WEB"})
_PORT_SPEC = re.compile(
    r"^(?P<name>[\w.-]+)(?:/(?P<app>[\w.-]+))? (?P<port>\d+)(?:->(?P<target>[\w.-]+))?$"
)


@dataclass(frozen=True)
class Port:
    number: int
    name: str = ""
    protocol: str = "TCP"
    target: int | str | None = None

    @property
    def target_port(self) -> int | str:
        return self.number if self.target is None else self.target

    @property
    def is_http(self) -> bool:
        return self.protocol in HTTP_PROTOCOLS


def protocol_of(name: str, app_protocol: str | None = None) -> str:
    if app_protocol and app_protocol.lower() in _PROTOCOLS:
        return _PROTOCOLS[app_protocol.lower()]
    prefix = name.lower()
    if prefix not in _PROTOCOLS:
        prefix = prefix.split("-", 1)[0]
    return _PROTOCOLS.get(prefix, "TCP")


@dataclass(frozen=True)
class Workload:
    """A Deployment, StatefulSet or Pod: what a selector can select."""

    kind: str
    namespace: str
    name: str
    labels: dict[str, str]
    service_account: str = "default"
    proxy: str | None = None  # "sidecar", "gateway" or None
    origin: str = "installed"  # "installed", "manifest" or "cluster"
    # The istio-proxy container as installed (inventory.yaml), to say what a re-apply changes.
    proxy_args: tuple[str, ...] = ()
    container_ports: tuple[int, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    selector: dict[str, str] | None
    ports: tuple[Port, ...]
    origin: str = "installed"
    external_name: str | None = None  # `type: ExternalName`: an alias for this host

    @property
    def host(self) -> str:
        return service_host(self.name, self.namespace)

    def port(self, number: int) -> Port | None:
        return next((p for p in self.ports if p.number == number), None)


@dataclass(frozen=True)
class Inventory:
    root_namespace: str = "istio-system"
    outbound_policy: str = ALLOW_ANY
    trust_domain: str = "cluster.local"
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    workloads: tuple[Workload, ...] = ()
    services: tuple[Service, ...] = ()

    @property
    def registry_only(self) -> bool:
        return self.outbound_policy == REGISTRY_ONLY

    def with_policy(self, registry_only: bool) -> Inventory:
        return replace(self, outbound_policy=REGISTRY_ONLY if registry_only else ALLOW_ANY)

    def installed(self, kind: str, namespace: str, name: str) -> bool:
        if kind == "Service":
            return any(s.namespace == namespace and s.name == name for s in self.services)
        return any(w.kind == kind and w.namespace == namespace and w.name == name for w in self.workloads)


def selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """A label selector (an empty one selects nothing here: Services without one have no pods)."""
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


@cache
def load_default() -> Inventory:
    """The lab as `up` leaves it (read once; Inventory is immutable)."""
    data = yaml.safe_load(INVENTORY_FILE.read_text(encoding="utf-8"))
    mesh = data["mesh"]
    return Inventory(
        root_namespace=mesh["rootNamespace"],
        outbound_policy=mesh["outboundTrafficPolicy"],
        trust_domain=mesh["trustDomain"],
        namespaces={ns: dict(labels or {}) for ns, labels in data["namespaces"].items()},
        workloads=tuple(
            Workload(
                kind=w["kind"],
                namespace=w["namespace"],
                name=w["name"],
                labels={k: str(v) for k, v in w["labels"].items()},
                service_account=w.get("serviceAccount", "default"),
                proxy=w.get("proxy"),
                proxy_args=tuple(str(a) for a in w.get("proxyArgs") or ()),
                container_ports=tuple(int(p) for p in w.get("containerPorts") or ()),
            )
            for w in data["workloads"]
        ),
        services=tuple(
            Service(
                namespace=s["namespace"],
                name=s["name"],
                selector=s.get("selector"),
                ports=tuple(_parse_port_spec(p) for p in s["ports"]),
            )
            for s in data["services"]
        ),
    )


def _parse_port_spec(spec: str) -> Port:
    match = _PORT_SPEC.match(spec)
    if not match:
        raise ValueError(f"bad port spec in {INVENTORY_FILE.name}: {spec!r}")
    target = match["target"]
    return Port(
        number=int(match["port"]),
        name=match["name"],
        protocol=protocol_of(match["name"], match["app"]),
        target=(int(target) if target.isdigit() else target) if target else None,
    )


def service_ports(spec: dict[str, Any]) -> tuple[Port, ...]:
    """The ports of a Kubernetes Service spec, skipping entries that are not well formed."""
    ports = []
    for item in spec.get("ports") or []:
        if not isinstance(item, dict) or not isinstance(item.get("port"), int):
            continue
        name = str(item.get("name") or "")
        target = item.get("targetPort")
        ports.append(
            Port(
                number=item["port"],
                name=name,
                protocol=protocol_of(name, item.get("appProtocol")),
                target=target if isinstance(target, (int, str)) else None,
            )
        )
    return tuple(ports)


def proxy_of(pod_spec: dict[str, Any], annotations: dict[str, Any]) -> str | None:
    """Whether a pod runs an Istio proxy, and as what: its args say `proxy router` or `sidecar`."""
    if str(annotations.get("inject.istio.io/templates", "")) == "gateway":
        return "gateway"
    containers = [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]
    for container in containers:
        if not isinstance(container, dict) or container.get("name") != "istio-proxy":
            continue
        args = [str(a) for a in container.get("args") or []]
        if "router" in args:
            return "gateway"
        if "sidecar" in args:
            return "sidecar"
    return None
