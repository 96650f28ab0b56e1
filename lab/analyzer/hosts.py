"""Istio host names: short names, FQDNs and wildcards, matched the way Istio matches them."""

from __future__ import annotations

CLUSTER_DOMAIN = "svc.cluster.local"


def fqdn(host: str, namespace: str) -> str:
    """Istio resolves a name without dots in the namespace of the resource that names it.

    Names with dots (even `reviews.default`) are taken literally, as Istio does.
    """
    if host == "*" or "." in host:
        return host
    return f"{host}.{namespace}.{CLUSTER_DOMAIN}"


def service_host(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.{CLUSTER_DOMAIN}"


def covers(pattern: str, host: str) -> bool:
    """True when `pattern` (possibly `*.domain` or `*`) includes every name `host` can be."""
    if pattern == "*" or pattern == host:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        if host.startswith("*."):
            return host[1:].endswith(suffix)
        return host.endswith(suffix) and len(host) > len(suffix)
    return False


def overlaps(a: str, b: str) -> bool:
    """True when some name matches both patterns, e.g. `*.wikipedia.org` and `en.wikipedia.org`."""
    return covers(a, b) or covers(b, a)


def specificity(pattern: str) -> tuple[int, int]:
    """Sort key: exact names first, then longer wildcard suffixes (Envoy's SNI precedence)."""
    return (1 if pattern.startswith("*") else 0, -len(pattern))
