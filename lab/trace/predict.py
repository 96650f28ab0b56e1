"""What `invoke explain` predicts for a request, as a verdict: compared with what the trace observed.

A small adapter over the analyzer's public path result (lab.analyzer.explain); the analyzer owns
the prediction, this only names it.
"""

from __future__ import annotations

from pathlib import Path

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
    if any(hop.proxy == "client without sidecar" for hop in path.hops):
        return None  # outside the mesh: the trace sees no sidecar line (no-evidence), not a path
    return path.verdict
