"""What EnvoyFilters add to or change in a proxy, read from their patches.

Only the shapes the egress designs use are understood: added clusters (including internal
listener endpoints and the dynamic forward proxy), added internal listeners with SNI filter
chains, and a MERGE that sets the `tcp_proxy` cluster of a gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lab.analyzer.hosts import covers
from lab.analyzer.inventory import Workload, selects
from lab.analyzer.model import Config
from lab.analyzer.resources import Resource

TCP_PROXY = ("envoy.filters.network.tcp_proxy", "envoy.tcp_proxy")
SNI_DFP = ("envoy.filters.network.sni_dynamic_forward_proxy",)
DFP_CLUSTER = "envoy.clusters.dynamic_forward_proxy"


@dataclass(frozen=True)
class Patched:
    """One piece of Envoy config and the EnvoyFilter that put it there."""

    value: dict[str, Any]
    by: Resource


@dataclass
class ProxyPatches:
    clusters: dict[str, Patched] = field(default_factory=dict)
    listeners: dict[str, Patched] = field(default_factory=dict)
    tcp_proxy_cluster: tuple[str, Resource] | None = None

    def internal_listener_of(self, cluster: str) -> str | None:
        """The internal listener a cluster sends to (`envoy_internal_address`), if any."""
        found = self.clusters.get(cluster)
        if found is None:
            return None
        assignment = found.value.get("load_assignment") or {}
        for group in assignment.get("endpoints") or []:
            for lb in group.get("lb_endpoints") or []:
                address = (lb.get("endpoint") or {}).get("address") or {}
                internal = address.get("envoy_internal_address") or {}
                if internal.get("server_listener_name"):
                    return str(internal["server_listener_name"])
        return None

    def is_forward_proxy(self, cluster: str) -> bool:
        found = self.clusters.get(cluster)
        return found is not None and (found.value.get("cluster_type") or {}).get("name") == DFP_CLUSTER

    def sni_chain(self, listener: str, sni: str) -> tuple[dict[str, Any], Patched] | None:
        """The filter chain of an added listener that a connection with this SNI takes."""
        found = self.listeners.get(listener)
        if found is None:
            return None
        for chain in found.value.get("filter_chains") or []:
            names = (chain.get("filter_chain_match") or {}).get("server_names") or ["*"]
            if any(covers(str(n), sni) for n in names):
                return chain, found
        return None


def applies_to(ef: Resource, workload: Workload, root_namespace: str) -> bool:
    if ef.namespace not in (root_namespace, workload.namespace):
        return False
    selector = (ef.spec.get("workloadSelector") or {}).get("labels")
    return not selector or selects(selector, workload.labels)


def context_matches(patch: dict[str, Any], proxy: str | None) -> bool:
    context = (patch.get("match") or {}).get("context") or "ANY"
    if context == "ANY":
        return True
    return (context == "GATEWAY") == (proxy == "gateway")


def patches_for(config: Config, workload: Workload) -> ProxyPatches:
    result = ProxyPatches()
    for ef in config.of_kind("EnvoyFilter"):
        if not applies_to(ef, workload, config.inventory.root_namespace):
            continue
        for patch in ef.spec.get("configPatches") or []:
            if isinstance(patch, dict) and context_matches(patch, workload.proxy):
                _read(patch, ef, result)
    return result


def _read(patch: dict[str, Any], ef: Resource, into: ProxyPatches) -> None:
    body = patch.get("patch") or {}
    value = body.get("value") if isinstance(body.get("value"), dict) else {}
    operation, apply_to = body.get("operation"), patch.get("applyTo")
    if operation == "ADD" and apply_to in ("CLUSTER", "LISTENER") and value.get("name"):
        target = into.clusters if apply_to == "CLUSTER" else into.listeners
        target[str(value["name"])] = Patched(value, ef)
    elif operation == "MERGE" and apply_to == "NETWORK_FILTER" and _matches_tcp_proxy(patch):
        cluster = (value.get("typed_config") or {}).get("cluster")
        if cluster:
            into.tcp_proxy_cluster = (str(cluster), ef)


def _matches_tcp_proxy(patch: dict[str, Any]) -> bool:
    listener = (patch.get("match") or {}).get("listener") or {}
    name = ((listener.get("filterChain") or {}).get("filter") or {}).get("name")
    return name in TCP_PROXY


def filter_named(chain: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any] | None:
    return next((f for f in chain.get("filters") or [] if f.get("name") in names), None)
