"""Checks of EnvoyFilters: how far they reach and whether their order is defined."""

from __future__ import annotations

from collections.abc import Iterator

from lab.analyzer import envoy
from lab.analyzer.findings import Finding
from lab.analyzer.model import Config
from lab.analyzer.rulebook import Rule, rule

_ROUTE_TARGETS = ("ROUTE_CONFIGURATION", "HTTP_ROUTE")
_FILTER_TARGETS = ("NETWORK_FILTER", "HTTP_FILTER")


@rule("LAB0501", "error", "root-namespace EnvoyFilter without workloadSelector")
def root_filter_without_selector(config: Config, found: Rule) -> Iterator[Finding]:
    root = config.inventory.root_namespace
    for ef in config.of_kind("EnvoyFilter"):
        if ef.namespace != root or (ef.spec.get("workloadSelector") or {}).get("labels"):
            continue
        patches = [p for p in ef.spec.get("configPatches") or [] if isinstance(p, dict)]
        hit = sorted(
            {
                f"{w.namespace}/{w.name}"
                for w in config.workloads
                if w.proxy and any(envoy.context_matches(p, w.proxy) for p in patches)
            }
        )
        shown = ", ".join(hit[:4]) + (f" and {len(hit) - 4} more" if len(hit) > 4 else "")
        message = (
            f"in the root namespace {root} without workloadSelector, it patches every matching "
            f"proxy in the mesh: {shown or 'none yet'}"
        )
        yield found(ef, message, "add workloadSelector.labels for the gateway it is meant for")


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
