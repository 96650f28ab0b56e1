"""Checks against what `invoke up` installed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lab.analyzer.findings import Finding
from lab.analyzer.inventory import Port, Service, Workload, service_ports
from lab.analyzer.model import WORKLOAD_KINDS, Config
from lab.analyzer.resources import Resource
from lab.analyzer.rulebook import Rule, rule

# `istioctl install` creates its objects with server-side apply, so they carry no
# `kubectl.kubernetes.io/last-applied-configuration`. A client-side `kubectl apply -f` of the same
# object is then a three-way strategic merge with an empty "original": it removes nothing
# (kubernetes/kubectl@release-1.30 pkg/cmd/apply/patcher.go; kubectl warns that the annotation
# "will be patched automatically"). Lists merge by their patch merge key (Service ports by `port`,
# containers by `name`, container ports by `containerPort`, k8s.io/api@v0.30 core/v1/types.go);
# a list without one, such as a container's `args`, is replaced. model.py applies the same merge.
_HOW = (
    "`istioctl install` created it with server-side apply, so this client-side `kubectl apply` is a "
    "strategic merge that removes nothing"
)


@rule("LAB0401", "error", "manifest re-declares a Service or workload that `up` installed")
def redeclares_installed(config: Config, found: Rule) -> Iterator[Finding]:
    """An error although the merge keeps most of the object: it changes the demo gateway that
    every other scenario shares (a new pod template rolls its pods), and undoing it needs the
    saved object put back exactly."""
    for r in config.resources:
        if r.kind not in ("Service", *WORKLOAD_KINDS):
            continue
        if not config.inventory.installed(r.kind, r.namespace, r.name):
            continue
        if r.kind == "Service":
            installed = next(
                s for s in config.inventory.services if (s.namespace, s.name) == (r.namespace, r.name)
            )
            message = _service_message(installed, r)
        else:
            workload = next(
                w
                for w in config.inventory.workloads
                if (w.kind, w.namespace, w.name) == (r.kind, r.namespace, r.name)
            )
            message = _workload_message(workload, r)
        hint = (
            "leave it alone; deploy your own gateway in its own namespace with a distinct label"
            if r.namespace == config.inventory.root_namespace
            else "use a new name"
        )
        yield found(r, message, hint)


def _service_message(installed: Service, r: Resource) -> str:
    ports = {p.number: p for p in installed.ports}
    changes = []
    for port in service_ports(r.spec):
        old = ports.get(port.number)
        if old is None:
            changes.append(f"adds port {_port(port)}")
        elif port.target is not None and port.target != old.target_port:
            changes.append(f"port {port.number} now goes to {port.target} (was {old.target_port})")
    kept = ", ".join(_port(p) for p in installed.ports)
    return (
        f"re-declares the Service that `invoke up` installed: {_HOW}. The Service keeps its ports "
        f"({kept}); " + ("; ".join(changes) if changes else "this manifest changes none of them")
    )


def _workload_message(installed: Workload, r: Resource) -> str:
    pod = r.data if r.kind == "Pod" else (r.spec.get("template") or {})
    containers = [c for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, dict)]
    changes = []
    for container in containers:
        name = container.get("name")
        if name == "istio-proxy" and container.get("args") is not None:
            new = " ".join(str(a) for a in container.get("args") or [])
            was = " ".join(installed.proxy_args) or "the installed args"
            changes.append(f"the istio-proxy container's args are replaced by [{new}] (were [{was}])")
        added = [
            p.get("containerPort")
            for p in _list(container.get("ports"))
            if p.get("containerPort") not in installed.container_ports
        ]
        if added:
            changes.append(f"container {name} gains containerPort {', '.join(map(str, added))}")
    labels = ",".join(f"{k}={v}" for k, v in installed.labels.items() if "/" not in k)
    return (
        f"re-declares the {r.kind} that `invoke up` installed: {_HOW}. It keeps its labels "
        f"({labels}), service account {installed.service_account} and other containers' settings; "
        + ("; ".join(changes) if changes else "this manifest changes nothing the analyzer models")
        + ". A changed pod template rolls the gateway's pods"
    )


def _port(p: Port) -> str:
    return f"{p.name} {p.number}->{p.target_port}" if p.target is not None else f"{p.name} {p.number}"


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
