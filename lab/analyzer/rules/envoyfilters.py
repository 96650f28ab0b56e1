"""Checks of EnvoyFilters: how far they reach and whether their order is defined."""

from __future__ import annotations

from collections.abc import Iterator

from lab.analyzer import envoy
from lab.analyzer.findings import Finding
from lab.analyzer.inventory import Workload
from lab.analyzer.model import Config
from lab.analyzer.resources import Resource
from lab.analyzer.rulebook import Rule, rule
from lab.analyzer.rules.gateways import servers, tcp_based

_ROUTE_TARGETS = ("ROUTE_CONFIGURATION", "HTTP_ROUTE")
_FILTER_TARGETS = ("NETWORK_FILTER", "HTTP_FILTER")


@rule("LAB0501", "warning", "root-namespace EnvoyFilter without workloadSelector")
def root_filter_without_selector(config: Config, found: Rule) -> Iterator[Finding]:
    """An EnvoyFilter in the root namespace applies to every proxy of the mesh its patches' context
    matches (the EnvoyFilter reference: "a config in the root namespace without a workloadSelector
    applies to all workloads"; istio/istio@1.23.2:pilot/pkg/model/envoyfilter.go). A warning, not
    an error: the design it belongs to works; the trap is what it does to the other proxies.

    For the egress-sni design's MERGE on `tcp_proxy`, the listeners it really touches are the
    gateways' TCP/TLS servers: a gateway builds a `tcp_proxy` only for TCP, TLS and passthrough
    servers (pilot/pkg/networking/core/gateway.go createGatewayTCPFilterChainOpts).
    """
    root = config.inventory.root_namespace
    for ef in config.of_kind("EnvoyFilter"):
        if ef.namespace != root or (ef.spec.get("workloadSelector") or {}).get("labels"):
            continue
        patches = [p for p in ef.spec.get("configPatches") or [] if isinstance(p, dict)]
        proxies = sorted(
            (w for w in config.workloads if w.proxy and any(envoy.context_matches(p, w.proxy) for p in patches)),
            key=lambda w: (w.namespace, w.name),
        )
        if any(envoy.merges_tcp_proxy(p) for p in patches):
            yield found(ef, _tcp_proxy_message(config, ef, proxies), _HINT)
            continue
        hit = [f"{w.namespace}/{w.name}" for w in proxies]
        shown = ", ".join(hit[:4]) + (f" and {len(hit) - 4} more" if len(hit) > 4 else "")
        message = (
            f"in the root namespace {root} without workloadSelector, it patches every matching "
            f"proxy in the mesh: {shown or 'none yet'}"
        )
        yield found(ef, message, _HINT)


_HINT = "add workloadSelector.labels for the gateway it is meant for"


def _tcp_proxy_message(config: Config, ef: Resource, proxies: list[Workload]) -> str:
    touched = []
    for w in proxies[:4]:
        tcp = sorted(
            {
                f"{g.namespace}/{g.name} port {server['port']['number']}"
                for g in config.gateways_of(w)
                for _, server in servers(g)
                if tcp_based(server)
            }
        )
        where = f"the tcp_proxy of {', '.join(tcp)}" if tcp else "no TCP/TLS listener yet"
        touched.append(f"{w.namespace}/{w.name} ({where})")
    more = f" and {len(proxies) - 4} more" if len(proxies) > 4 else ""
    return (
        f"in the root namespace {config.inventory.root_namespace} without workloadSelector, its "
        f"MERGE on tcp_proxy reaches every gateway: {', '.join(touched) or 'none yet'}{more}. It "
        "starts to hurt when a Gateway gives one of the others a TLS, TCP or passthrough server: "
        "that server's connections then go to this filter's cluster instead of their own route"
    )


@rule("IST0151", "warning", "EnvoyFilter relative patch without priority")
def relative_patch_without_priority(config: Config, found: Rule) -> Iterator[Finding]:
    for ef in config.of_kind("EnvoyFilter"):
        if ef.spec.get("priority"):
            continue
        for index, patch in enumerate(ef.spec.get("configPatches") or []):
            operation = (patch.get("patch") or {}).get("operation")
            target = patch.get("applyTo")
            relative = operation in ("INSERT_BEFORE", "INSERT_AFTER") or (
                (operation == "REPLACE" and target in _FILTER_TARGETS)
                or (operation == "REMOVE" and target not in _ROUTE_TARGETS)
            )
            if relative:
                message = (
                    f"configPatches[{index}] uses {operation}, which depends on other filters' "
                    "order, and the EnvoyFilter sets no priority: it may not apply"
                )
                yield found(ef, message, "set spec.priority")
