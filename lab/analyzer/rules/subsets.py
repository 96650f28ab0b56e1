"""Checks of DestinationRule subsets and the routes that name them."""

from __future__ import annotations

from collections.abc import Iterator

from lab.analyzer.findings import Finding
from lab.analyzer.hosts import covers, fqdn
from lab.analyzer.model import Config
from lab.analyzer.rulebook import Rule, rule


def _labels(labels: dict[str, object]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "none"


@rule("KIA1107", "error", "VirtualService subset not defined")
def subset_not_defined(config: Config, found: Rule) -> Iterator[Finding]:
    for route in config.routes():
        for dest in route.destinations:
            subset = dest.get("subset")
            host = fqdn(str(dest.get("host")), route.vs.namespace)
            if subset and config.entry_for(host) and not config.subset(host, str(subset)):
                message = (
                    f"{route.kind}[{route.index}] names subset {subset} of {host}, which no "
                    "DestinationRule defines: its cluster does not exist"
                )
                yield found(route.vs, message, f"define subset {subset} in a rule for {host}")


@rule("KIA0203", "error", "subset labels select no pod of the host")
def subset_selects_nothing(config: Config, found: Rule) -> Iterator[Finding]:
    for dr in config.of_kind("DestinationRule"):
        host = fqdn(str(dr.spec.get("host")), dr.namespace)
        entries = config.in_registry(host)
        if not entries:
            continue  # KIA0202 says so
        endpoints = [labels for e in entries for labels in config.endpoint_labels(e)]
        for subset in dr.spec.get("subsets") or []:
            labels = subset.get("labels") or {}
            if not labels or any(all(ep.get(k) == str(v) for k, v in labels.items()) for ep in endpoints):
                continue
            name = str(subset.get("name"))
            used = _used(config, host, name)
            pods = "; ".join(sorted({_labels(_own(ep)) for ep in endpoints})) or "none"
            message = (
                f"subset {name} labels {_labels(labels)} select no endpoint of {host} "
                f"(its endpoints carry: {pods}), so its cluster is empty"
                + ("" if used else "; no route uses it")
            )
            hint = (
                "subsets select the host's pods, not the client's: use labels the "
                f"{host.split('.')[0]} pods carry, or none"
            )
            yield found(dr, message, hint, None if used else "info")


@rule("KIA0209", "warning", "subset without labels")
def subset_without_labels(config: Config, found: Rule) -> Iterator[Finding]:
    for dr in config.of_kind("DestinationRule"):
        subsets = [s for s in dr.spec.get("subsets") or []]
        host = fqdn(str(dr.spec.get("host")), dr.namespace)
        for subset in subsets:
            if subset.get("labels"):
                continue
            others_labelled = any(s.get("labels") for s in subsets)
            message = (
                f"subset {subset.get('name')} has no labels: it selects every endpoint of "
                f"{host}; fine when it only gives the traffic a cluster of its own "
                "(as egress-gateway designs do)"
            )
            yield found(
                dr, message, "add labels if you meant some of the pods", "info" if others_labelled else None
            )


def _own(labels: dict[str, str]) -> dict[str, str]:
    """The labels people set (`app`, `istio`), without prefixed bookkeeping like `istio.io/rev`."""
    return {k: v for k, v in labels.items() if "/" not in k} or labels


def _used(config: Config, host: str, subset: str) -> bool:
    """Whether a route sends to this subset of a host the rule covers (by exact host when the
    rule's host is concrete, the common case, so the check costs one lookup)."""
    if not host.startswith("*"):
        return any(dest.get("subset") == subset for _, dest in config.routes_to(host))
    return any(
        dest.get("subset") == subset and covers(host, fqdn(str(dest.get("host")), r.vs.namespace))
        for r in config.routes()
        for dest in r.destinations
    )
