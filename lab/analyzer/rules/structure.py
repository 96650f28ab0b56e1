"""Checks across documents: duplicates and namespaces that do not exist."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from lab.analyzer.findings import Finding
from lab.analyzer.model import Config
from lab.analyzer.rulebook import Rule, rule


@rule("LAB0007", "warning", "same resource declared twice")
def declared_twice(config: Config, found: Rule) -> Iterator[Finding]:
    counts = Counter((r.kind, r.namespace, r.name) for r in config.resources)
    seen: set[tuple[str, str, str]] = set()
    for r in config.resources:
        key = (r.kind, r.namespace, r.name)
        if counts[key] > 1 and key not in seen:
            seen.add(key)
            message = f"declared {counts[key]} times; kubectl applies the last one ({r.source} first)"
            yield found(r, message, "keep one declaration")


@rule("LAB0008", "error", "namespace does not exist")
def missing_namespace(config: Config, found: Rule) -> Iterator[Finding]:
    for r in config.resources:
        if r.namespace and r.namespace not in config.namespaces:
            known = ", ".join(sorted(config.namespaces))
            message = f"namespace {r.namespace} does not exist in the lab ({known})"
            yield found(r, message, f"add a Namespace manifest for {r.namespace}")
