"""The two entry points the Invoke tasks call: `analyze` and `explain`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from lab.analyzer import live as live_mode
from lab.analyzer.engine import analyze, build_config, finalize
from lab.analyzer.explain import explain
from lab.analyzer.findings import has_errors
from lab.analyzer.inventory import Inventory, load_default
from lab.analyzer.loading import load_paths
from lab.analyzer.render import findings_json, findings_table, findings_text, path_dot, path_text
from lab.errors import UsageError
from lab.scenario.model import load_catalog, select
from lab.verdicts import PREDICTED

ANALYZE_FORMATS = ("table", "json")
EXPLAIN_FORMATS = ("text", "dot")


def targets(paths: list[str], scenario: str | None) -> tuple[list[Path], bool]:
    """The files and folders to read, and whether the mesh is REGISTRY_ONLY.

    A scenario gives exactly the manifests it applies and its mesh setting, as `invoke scenario`
    reads them for its pre-flight.
    """
    found = [Path(p) for p in paths]
    registry_only = False
    if scenario:
        [chosen] = select(load_catalog(), [scenario], run_all=False)
        found[:0] = chosen.manifests
        registry_only = chosen.registry_only
    if not found:
        raise UsageError("nothing to analyze", "give manifest files or folders, or --scenario NAME")
    return found, registry_only


def run_analyze(
    paths: list[str],
    scenario: str | None,
    fmt: str = "table",
    live: bool = False,
    settings: Any = None,
) -> int:
    """Print the findings; exit code 1 when any is an error, else 0."""
    _check_format(fmt, ANALYZE_FORMATS)
    files, registry_only = targets(paths, scenario)
    documents, findings = load_paths(files)
    inventory: Inventory | None = None
    cluster = None
    if live:
        cluster = _cluster(settings)
        inventory = live_mode.live_inventory(cluster, load_default())
    found = analyze(documents, registry_only=registry_only, inventory=inventory)
    if cluster is not None:
        found = live_mode.merge(found, live_mode.istioctl_findings(cluster))
    findings = finalize(findings + found)
    if fmt == "json":
        print(findings_json(findings))
    elif sys.stdout.isatty():
        findings_table(findings, Console())
    else:
        print(findings_text(findings))
    return 1 if has_errors(findings) else 0


def run_explain(
    paths: list[str],
    scenario: str | None,
    source: str,
    to: str,
    fmt: str = "text",
    expect: str | None = None,
) -> int:
    """Print the path of a request.

    Exit code: with `expect` (a verdict of lab.verdicts), 0 when the predicted path has that
    verdict, else 1; without it, 0 when the request reaches its destination, else 1.
    """
    _check_format(fmt, EXPLAIN_FORMATS)
    if expect is not None and expect not in PREDICTED:
        raise UsageError(f"unknown verdict {expect!r}", f"use one of: {', '.join(PREDICTED)}")
    files, registry_only = targets(paths, scenario)
    documents, unreadable = load_paths(files)
    config, rejected = build_config(documents, registry_only=registry_only)
    path = explain(config, source, to)
    print(path_dot(path) if fmt == "dot" else path_text(path))
    skipped = [f for f in unreadable + rejected if f.severity == "error"]
    if skipped:
        print(f"note: {len(skipped)} document(s) left out; see `invoke analyze`", file=sys.stderr)
    if expect is not None:
        if path.verdict != expect:
            print(f"expected {expect}, predicted {path.verdict}", file=sys.stderr)
            return 1
        return 0
    return 0 if path.reached else 1


def _check_format(fmt: str, allowed: tuple[str, ...]) -> None:
    if fmt not in allowed:
        raise UsageError(f"unknown format {fmt!r}", f"use one of: {', '.join(allowed)}")


def _cluster(settings: Any) -> live_mode.Commands:
    from lab.cluster import Cluster  # late: only --live needs SSH
    from lab.config import load_settings

    return Cluster.for_lab(settings if settings is not None else load_settings())
