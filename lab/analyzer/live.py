"""`--live`: the inventory from the running lab, and `istioctl analyze` merged in."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Protocol

from lab.analyzer.findings import Finding, Severity
from lab.analyzer.inventory import Inventory, Service, Workload, proxy_of, service_ports
from lab.errors import LabError

# istioctl codes that say what one of ours already says about the same resource. Only codes that
# `istioctl analyze` 1.23.2 emits: its list (istio/istio@1.23.2:pkg/config/analysis/msg/
# messages.yaml) ends at IST0170. IST0101 is ReferencedResourceNotFound (virtualservice/
# destinationhosts.go, destinationrules.go, gateways.go; gateway/gateway.go for selectors),
# IST0106 SchemaValidationError (schema/validation.go, the webhook's own checks), IST0162
# GatewayPortNotDefinedOnService, IST0151 EnvoyFilterUsesRelativeOperation. Nothing in 1.23.2
# reports a subset that selects no pod or a DestinationRule host outside the registry (Istio 1.26
# added IST0173 and IST0174 for those): KIA0203 and KIA0202 stand alone.
SAME_AS: dict[str, frozenset[str]] = {
    "IST0101": frozenset({"KIA1101", "KIA1102", "KIA1107", "KIA1108", "KIA0302"}),
}
_LEVELS: dict[str, Severity] = {"error": "error", "warning": "warning", "info": "info"}
ALWAYS_THERE = ("default", "kube-system", "kube-public", "kube-node-lease")


class Commands(Protocol):
    """What `--live` needs of lab.cluster.Cluster."""

    def kubectl_json(self, *args: str) -> dict[str, Any]: ...

    def istioctl(self, *args: str, check: bool = True) -> Any: ...


def live_inventory(cluster: Commands, base: Inventory) -> Inventory:
    """The cluster's pods and Services, with the mesh settings of `base`."""
    items = cluster.kubectl_json("get", "pods,services", "-A").get("items") or []
    workloads: dict[tuple[str, str, str], Workload] = {}
    services: list[Service] = []
    namespaces: dict[str, dict[str, str]] = {ns: {} for ns in ALWAYS_THERE}
    for item in items:
        meta, spec = item.get("metadata") or {}, item.get("spec") or {}
        namespace = str(meta.get("namespace") or "default")
        namespaces.setdefault(namespace, {})
        if item.get("kind") == "Service":
            selector = spec.get("selector")
            services.append(
                Service(namespace, str(meta.get("name")), selector, service_ports(spec), "cluster")
            )
        elif item.get("kind") == "Pod":
            workload = _workload(meta, spec, namespace)
            workloads.setdefault((workload.kind, namespace, workload.name), workload)
    return replace(base, namespaces=namespaces, workloads=tuple(workloads.values()), services=tuple(services))


def _workload(meta: dict[str, Any], spec: dict[str, Any], namespace: str) -> Workload:
    """A pod as the workload that owns it: ReplicaSet pods belong to their Deployment."""
    labels = {k: str(v) for k, v in (meta.get("labels") or {}).items()}
    kind, name = "Pod", str(meta.get("name"))
    owner = next(iter(meta.get("ownerReferences") or []), None)
    if owner:
        kind, name = str(owner.get("kind")), str(owner.get("name"))
        suffix = f"-{labels.get('pod-template-hash', '')}"
        if kind == "ReplicaSet" and name.endswith(suffix) and len(suffix) > 1:
            kind, name = "Deployment", name[: -len(suffix)]
    proxy = proxy_of(spec, meta.get("annotations") or {})
    account = str(spec.get("serviceAccountName") or "default")
    return Workload(kind, namespace, name, labels, account, proxy, "cluster")


def istioctl_findings(cluster: Commands) -> list[Finding]:
    """`istioctl analyze -A -o json` as findings. It exits non-zero when it finds problems."""
    result = cluster.istioctl("analyze", "-A", "-o", "json", check=False)
    try:
        messages = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        tail = (result.stderr or "").strip().splitlines()
        raise LabError(f"istioctl analyze failed: {tail[-1] if tail else 'it printed no JSON'}") from None
    if not isinstance(messages, list):
        raise LabError("istioctl analyze printed JSON that is not a list of messages")
    return [_finding(m) for m in messages if isinstance(m, dict)]


def _finding(message: dict[str, Any]) -> Finding:
    kind, _, where = str(message.get("origin", "")).partition(" ")
    if "/" in where:
        namespace, _, name = where.partition("/")
    elif "." in where:  # older istioctl: name.namespace
        name, _, namespace = where.partition(".")
    else:
        namespace, name = "", where
    url = message.get("documentationUrl")
    return Finding(
        code=str(message.get("code", "IST????")),
        severity=_LEVELS.get(str(message.get("level", "")).lower(), "warning"),
        kind=kind or "Cluster",
        namespace=namespace,
        name=name,
        message=str(message.get("message", "")),
        hint=f"see {url}" if url else "see `istioctl analyze -A`",
    )


def merge(own: list[Finding], istio: list[Finding]) -> list[Finding]:
    """Ours plus istioctl's, leaving out istioctl's messages that repeat one of ours."""
    ours = {(f.code, f.kind, f.namespace, f.name) for f in own}
    kept = []
    for f in istio:
        same = SAME_AS.get(f.code, frozenset()) | {f.code}
        if not any((code, f.kind, f.namespace, f.name) in ours for code in same):
            kept.append(f)
    return own + kept
