"""What EnvoyFilters add to or change in a proxy, read from their patches.

Only the shapes the egress designs use are understood: added clusters (including internal
listener endpoints and the dynamic forward proxy), added internal listeners with SNI filter
chains, and a MERGE that sets the `tcp_proxy` cluster of a gateway. Patch values are free-form
(the CRD keeps unknown fields), so everything here reads them with `dig` and never assumes a type.
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


def dig(value: Any, *keys: str) -> Any:
    """value[k1][k2]..., or None where a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


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
        groups = items(dig(found.value, "load_assignment", "endpoints")) if found else []
        for group in groups:
            for lb in items(dig(group, "lb_endpoints")):
                name = dig(lb, "endpoint", "address", "envoy_internal_address", "server_listener_name")
                if name:
                    return str(name)
        return None

    def is_forward_proxy(self, cluster: str) -> bool:
        found = self.clusters.get(cluster)
        return found is not None and dig(found.value, "cluster_type", "name") == DFP_CLUSTER

    def sni_chain(self, listener: str, sni: str) -> tuple[dict[str, Any], Patched] | None:
        """The filter chain of an added listener that a connection with this SNI takes."""
        found = self.listeners.get(listener)
        chains = items(dig(found.value, "filter_chains")) if found else []
        for chain in chains:
            names = items(dig(chain, "filter_chain_match", "server_names")) or ["*"]
            if isinstance(chain, dict) and any(covers(str(n), sni) for n in names):
                return chain, found  # type: ignore[return-value]
        return None


def applies_to(ef: Resource, workload: Workload, root_namespace: str) -> bool:
    """EnvoyFilters apply in their namespace, or mesh-wide from the root namespace."""
    if ef.namespace not in (root_namespace, workload.namespace):
        return False
    selector = dig(ef.spec, "workloadSelector", "labels")
    return not selector or selects(selector, workload.labels)


def context_matches(patch: dict[str, Any], proxy: str | None) -> bool:
    context = dig(patch, "match", "context") or "ANY"
    if context == "ANY":
        return True
    return (context == "GATEWAY") == (proxy == "gateway")


def patches_for(config: Config, workload: Workload) -> ProxyPatches:
    """What the EnvoyFilters do to one proxy (computed once per workload and config)."""
    key = ("patches", workload.kind, workload.namespace, workload.name)
    known = config.memo.get(key)
    if known is None:
        known = config.memo[key] = _patches_for(config, workload)
    return known


def _patches_for(config: Config, workload: Workload) -> ProxyPatches:
    result = ProxyPatches()
    root = config.inventory.root_namespace
    filters = config.in_namespace("EnvoyFilter", root)
    if workload.namespace != root:
        filters = filters + config.in_namespace("EnvoyFilter", workload.namespace)
    for ef in filters:
        if not applies_to(ef, workload, root):
            continue
        for patch in items(ef.spec.get("configPatches")):
            if isinstance(patch, dict) and context_matches(patch, workload.proxy):
                _read(patch, ef, result)
    return result


def _read(patch: dict[str, Any], ef: Resource, into: ProxyPatches) -> None:
    value = dig(patch, "patch", "value")
    if not isinstance(value, dict):
        return
    operation, apply_to = dig(patch, "patch", "operation"), patch.get("applyTo")
    if operation == "ADD" and apply_to in ("CLUSTER", "LISTENER") and value.get("name"):
        target = into.clusters if apply_to == "CLUSTER" else into.listeners
        target[str(value["name"])] = Patched(value, ef)
    elif operation == "MERGE" and apply_to == "NETWORK_FILTER" and _on_tcp_proxy(patch):
        cluster = dig(value, "typed_config", "cluster")
        if cluster:
            into.tcp_proxy_cluster = (str(cluster), ef)


def merges_tcp_proxy(patch: dict[str, Any]) -> bool:
    """A MERGE into the `tcp_proxy` network filter, as the egress-sni design sets its cluster."""
    return (
        dig(patch, "patch", "operation") == "MERGE"
        and patch.get("applyTo") == "NETWORK_FILTER"
        and _on_tcp_proxy(patch)
    )


def _on_tcp_proxy(patch: dict[str, Any]) -> bool:
    return dig(patch, "match", "listener", "filterChain", "filter", "name") in TCP_PROXY


def filter_named(chain: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any] | None:
    return next((f for f in items(chain.get("filters")) if dig(f, "name") in names), None)
