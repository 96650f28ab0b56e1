"""What `invoke explain` predicts for a request, as a verdict: compared with what the trace observed.

A small adapter over the analyzer's public path result (lab.analyzer.explain); the analyzer owns
the prediction, this only names it.
"""

from __future__ import annotations

from pathlib import Path

from lab import verdicts
from lab.errors import LabError


def predicted_verdict(files: list[Path], registry_only: bool, source: str, url: str) -> str | None:
    """The verdict `explain` predicts; None when it cannot say (the analyzer is not installed, or the
    client has no sidecar, which explain treats as outside the mesh)."""
    try:
        from lab.analyzer.engine import build_config
        from lab.analyzer.explain import explain
        from lab.analyzer.loading import load_paths
    except ImportError:
        return None
    documents, _ = load_paths(files)
    config, _ = build_config(documents, registry_only=registry_only)
    try:
        path = explain(config, source, url)
    except LabError:
        return None
    return verdict_of(path)


def verdict_of(path: object) -> str | None:
    hops = list(getattr(path, "hops", []))
    reached = bool(getattr(path, "reached", False))
    proxies = [h.proxy for h in hops]
    if "client without sidecar" in proxies:
        return None
    if "egress gateway" in proxies:
        return verdicts.EGRESS_GATEWAY if reached else verdicts.DROPPED
    clusters = [s.value for h in hops if h.proxy == "client sidecar" for s in h.steps if s.what == "cluster"]
    if any(c.startswith("BlackHoleCluster") for c in clusters):
        return verdicts.BLACKHOLE
    if any(c.startswith("PassthroughCluster") for c in clusters):
        return verdicts.PASSTHROUGH
    return verdicts.DIRECT if reached else verdicts.DROPPED
