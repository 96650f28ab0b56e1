"""From YAML documents to resources: is each document a Kubernetes object we understand?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lab.analyzer.findings import Finding
from lab.analyzer.rulebook import input_rule

NOT_AN_OBJECT = input_rule("LAB0004", "error", "document is not a Kubernetes object")
UNKNOWN_KIND = input_rule("LAB0005", "warning", "kind not analyzed")
BAD_API_VERSION = input_rule("LAB0006", "error", "apiVersion not served for this kind")
WRONG_TYPE = input_rule("LAB0009", "error", "field has the wrong type")


def _kinds(group: str, versions: str, *kinds: str) -> dict[tuple[str, str], frozenset[str]]:
    return {(group, kind): frozenset(versions.split()) for kind in kinds}


# (API group, kind) -> versions the lab's API server serves (Istio 1.23 CRDs, Kubernetes 1.30).
SERVED: dict[tuple[str, str], frozenset[str]] = {
    **_kinds("networking.istio.io", "v1 v1beta1 v1alpha3", "VirtualService", "DestinationRule", "Gateway"),
    **_kinds("networking.istio.io", "v1 v1beta1 v1alpha3", "ServiceEntry", "Sidecar", "WorkloadEntry"),
    **_kinds("networking.istio.io", "v1 v1beta1 v1alpha3", "WorkloadGroup"),
    **_kinds("networking.istio.io", "v1alpha3", "EnvoyFilter"),
    **_kinds("networking.istio.io", "v1beta1", "ProxyConfig"),
    **_kinds("security.istio.io", "v1 v1beta1", "AuthorizationPolicy", "PeerAuthentication"),
    **_kinds("security.istio.io", "v1 v1beta1", "RequestAuthentication"),
    **_kinds("telemetry.istio.io", "v1 v1alpha1", "Telemetry"),
    **_kinds("extensions.istio.io", "v1alpha1", "WasmPlugin"),
    **_kinds("", "v1", "Namespace", "Service", "Pod", "ServiceAccount", "ConfigMap", "Secret"),
    **_kinds("", "v1", "Endpoints"),
    **_kinds("apps", "v1", "Deployment", "StatefulSet", "DaemonSet"),
    **_kinds("rbac.authorization.k8s.io", "v1", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"),
    **_kinds("batch", "v1", "Job"),
    **_kinds("policy", "v1", "PodDisruptionBudget"),
    **_kinds("networking.k8s.io", "v1", "NetworkPolicy"),
}
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding"})

# The fields the checks read, with their types: a document whose fields have other types is
# one the API server rejects, so it is reported and left out of the model.
_METADATA = {"labels": dict, "annotations": dict}
_DEST = {"host": str, "subset": str, "port": {"number": int}}
_MATCH = {"gateways": [str], "port": int, "sniHosts": [str]}
_ROUTES = [{"match": [_MATCH], "route": [{"destination": _DEST}]}]
_LABELS = {"labels": dict}
_TLS = {"mode": str}
_POLICY = {"tls": _TLS, "portLevelSettings": [{"port": {"number": int}, "tls": _TLS}]}
_SUBSET = {"name": str, "labels": dict, "trafficPolicy": _POLICY}
_SERVER = {"port": {"number": int, "protocol": str}, "hosts": [str], "tls": _TLS}
_ENTRY_PORT = {"number": int, "name": str, "protocol": str}
_PATCH = {"applyTo": str, "match": dict, "patch": {"operation": str, "value": dict}}
_CONTAINER = {"name": str, "args": [str]}
_POD = {"metadata": _METADATA, "spec": {"containers": [_CONTAINER], "initContainers": [_CONTAINER]}}
SHAPES: dict[str, dict[str, Any]] = {
    "VirtualService": {"hosts": [str], "gateways": [str], "http": _ROUTES, "tls": _ROUTES, "tcp": _ROUTES},
    "DestinationRule": {
        "host": str,
        "subsets": [_SUBSET],
        "trafficPolicy": _POLICY,
    },
    "Gateway": {"selector": dict, "servers": [_SERVER]},
    "ServiceEntry": {
        "hosts": [str],
        "ports": [_ENTRY_PORT],
        "resolution": str,
        "location": str,
        "workloadSelector": _LABELS,
        "endpoints": [_LABELS],
    },
    "EnvoyFilter": {"workloadSelector": _LABELS, "configPatches": [_PATCH]},
    "Service": {"selector": dict, "ports": [{"port": int, "name": str}]},
    "Pod": _POD["spec"],
    **{kind: {"template": _POD} for kind in ("Deployment", "StatefulSet", "DaemonSet")},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "VirtualService": ("hosts",),
    "DestinationRule": ("host",),
    "Gateway": ("servers",),
    "ServiceEntry": ("hosts",),
}


@dataclass(frozen=True)
class Resource:
    kind: str
    api_version: str
    namespace: str
    name: str
    data: dict[str, Any]
    source: str

    @property
    def metadata(self) -> dict[str, Any]:
        return self.data.get("metadata") or {}

    @property
    def spec(self) -> dict[str, Any]:
        spec = self.data.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def ref(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


@dataclass(frozen=True)
class Unnamed:
    """Where to attach a finding about a document that has no usable kind or name."""

    kind: str
    namespace: str
    name: str


def to_resource(data: Any, source: str) -> tuple[Resource | None, list[Finding]]:
    """The resource a document declares, or None and the findings that say why not."""
    where = Unnamed("Document", "", source)
    if not isinstance(data, dict):
        message = f"{source} is a {type(data).__name__}, not a mapping with apiVersion and kind"
        return None, [NOT_AN_OBJECT(where, message, "each YAML document must be one object")]
    kind, api_version = data.get("kind"), data.get("apiVersion")
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    missing = [
        label
        for label, value in (("apiVersion", api_version), ("kind", kind), ("metadata.name", name))
        if not isinstance(value, str) or not value
    ]
    if missing:
        if isinstance(kind, str) and kind:
            where = Unnamed(kind, "", source)
        message = f"{source} has no {', '.join(missing)}"
        return None, [NOT_AN_OBJECT(where, message, f"add {' and '.join(missing)}")]
    assert isinstance(kind, str) and isinstance(api_version, str) and isinstance(name, str)
    raw_ns = metadata.get("namespace") if isinstance(metadata, dict) else None
    namespace = "" if kind in CLUSTER_SCOPED else str(raw_ns or "default")
    resource = Resource(kind, api_version, namespace, name, data, source)

    group, _, version = api_version.rpartition("/")
    served = SERVED.get((group, kind))
    if served is None:
        message = f"{api_version} {kind} is not a kind this analyzer knows; it was not checked"
        return None, [UNKNOWN_KIND(resource, message, "check it with `istioctl analyze` instead")]
    if version not in served:
        versions = ", ".join(f"{group}/{v}" if group else v for v in sorted(served))
        message = f"the API server does not serve {kind} as {api_version}"
        return None, [BAD_API_VERSION(resource, message, f"use one of: {versions}")]
    problems = _shape_problems(metadata, _METADATA, "metadata")
    problems += _shape_problems(data.get("spec"), SHAPES.get(kind), "spec")
    problems += [f"spec.{f} is required" for f in REQUIRED.get(kind, ()) if f not in resource.spec]
    if problems:
        message = "; ".join(problems[:3]) + (" …" if len(problems) > 3 else "")
        return None, [WRONG_TYPE(resource, message, "fix the field types; kubectl would reject it")]
    return resource, []


def _shape_problems(value: Any, shape: Any, path: str) -> list[str]:
    """What in `value` does not fit `shape`; absent (null) fields fit, null list items do not."""
    if shape is None or value is None:
        return []
    if isinstance(shape, list):
        if not isinstance(value, list):
            return [f"{path} must be a list"]
        problems = [f"{path}[{i}] must not be empty" for i, item in enumerate(value) if item is None]
        items = enumerate(value)
        return problems + [p for i, item in items for p in _shape_problems(item, shape[0], f"{path}[{i}]")]
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return [f"{path} must be a mapping"]
        fields = shape.items()
        return [p for k, sub in fields for p in _shape_problems(value.get(k), sub, f"{path}.{k}")]
    if shape is int and (isinstance(value, bool) or not isinstance(value, int)):
        return [f"{path} must be a number"]
    if shape is not int and not isinstance(value, shape):
        return [f"{path} must be a {'string' if shape is str else shape.__name__}"]
    return []
