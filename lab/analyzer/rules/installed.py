"""Checks against what `invoke up` installed."""

from __future__ import annotations

from collections.abc import Iterator

from lab.analyzer.findings import Finding
from lab.analyzer.model import WORKLOAD_KINDS, Config
from lab.analyzer.rulebook import Rule, rule


@rule("LAB0401", "error", "manifest re-declares a Service or workload that `up` installed")
def redeclares_installed(config: Config, found: Rule) -> Iterator[Finding]:
    for r in config.resources:
        if r.kind not in ("Service", *WORKLOAD_KINDS):
            continue
        if not config.inventory.installed(r.kind, r.namespace, r.name):
            continue
        was = _described(config, r.kind, r.namespace, r.name)
        message = (
            f"re-declares the {r.kind} that `invoke up` installed ({was}): applying it "
            "overwrites the installed one"
        )
        hint = (
            "leave it alone; deploy your own gateway in its own namespace with a distinct label"
            if r.namespace == config.inventory.root_namespace
            else "use a new name"
        )
        yield found(r, message, hint)


def _described(config: Config, kind: str, namespace: str, name: str) -> str:
    if kind == "Service":
        service = next(s for s in config.inventory.services if (s.namespace, s.name) == (namespace, name))
        ports = ", ".join(
            f"{p.name} {p.number}->{p.target_port}" if p.target is not None else f"{p.name} {p.number}"
            for p in service.ports
        )
        return f"ports {ports}"
    workload = next(
        w for w in config.inventory.workloads if (w.kind, w.namespace, w.name) == (kind, namespace, name)
    )
    labels = ",".join(f"{k}={v}" for k, v in workload.labels.items() if "/" not in k)
    return f"labels {labels}, service account {workload.service_account}"
