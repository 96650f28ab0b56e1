"""What a scenario changes on the cluster and how it is put back.

- the mesh config (`data.mesh` of ConfigMap istio-system/istio, YAML text): saved verbatim, edited,
  restored verbatim;
- installed objects a scenario re-declares (`preserve`): saved before, put back exactly afterwards
  (`kubectl apply` merged the scenario's version into them and added kubectl's
  last-applied-configuration annotation; the restore undoes both);
- the baseline for the leak check: namespaces, Istio config resources, the mesh text and the
  preserved objects, compared before and after;
- the cluster's clock, which log reads start from.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from lab.errors import LabError
from lab.nodes import CommandResult
from lab.scenario.model import ObjectRef

MESH_NAMESPACE, MESH_CONFIGMAP = "istio-system", "istio"
ISTIO_KINDS = (
    "gateways.networking.istio.io",
    "virtualservices.networking.istio.io",
    "destinationrules.networking.istio.io",
    "serviceentries.networking.istio.io",
    "sidecars.networking.istio.io",
    "envoyfilters.networking.istio.io",
    "telemetries.telemetry.istio.io",
    "authorizationpolicies.security.istio.io",
)
# Set by the API server or by controllers: never part of what we save, restore or compare.
_SERVER_METADATA = ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation", "selfLink")
_CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)


# Log lines carry the cluster's timestamps, so `--since-time` must come from the cluster's clock too:
# a laptop a few seconds ahead hides the request's lines, one behind counts earlier runs' lines.
CLOCK_COMMAND = "date -u +%Y-%m-%dT%H:%M:%S.%NZ"
_CLOCK = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z")


class Shell(Protocol):
    """A shell on k3s-s (`lab.nodes.Node`)."""

    def run(
        self, command: str, *, stdin: str | None = None, check: bool = True, timeout: float | None = None
    ) -> CommandResult: ...


class ClusterLike(Protocol):
    """The part of `lab.cluster.Cluster` the engine uses; unit tests pass a fake."""

    @property
    def node(self) -> Shell: ...

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float | None = None
    ) -> CommandResult: ...

    def kubectl_json(self, *args: str, timeout: float | None = None) -> dict[str, Any]: ...

    def istioctl(self, *args: str, check: bool = True, timeout: float | None = None) -> CommandResult: ...

    def wait(
        self, *targets: str, condition: str, namespace: str, timeout: float, selector: str | None = None
    ) -> None: ...


def cluster_time(cluster: ClusterLike) -> str:
    """Now on k3s-s, RFC 3339 UTC to the microsecond (kubectl's --since-time takes fractions)."""
    read = cluster.node.run(CLOCK_COMMAND, timeout=30)
    match = _CLOCK.fullmatch(read.stdout.strip())
    if not match:
        raise LabError(f"{read.node}: `{CLOCK_COMMAND}` printed {read.stdout.strip()[:60]!r}, not a time")
    # Cut, never rounded, to microseconds: the start must not pass the moment read.
    return f"{match[1]}.{(match[2] or '').ljust(6, '0')[:6]}Z"


# -- mesh config ---------------------------------------------------------------------------------
def read_mesh(cluster: ClusterLike) -> str:
    configmap = cluster.kubectl_json("get", "configmap", MESH_CONFIGMAP, "-n", MESH_NAMESPACE)
    return (configmap.get("data") or {}).get("mesh", "")


def mesh_with_policy(mesh_text: str, policy: str) -> str:
    mesh = yaml.safe_load(mesh_text) or {}
    if not isinstance(mesh, dict):
        raise LabError(f"ConfigMap {MESH_NAMESPACE}/{MESH_CONFIGMAP}: data.mesh is not a YAML mapping")
    mesh["outboundTrafficPolicy"] = {**(mesh.get("outboundTrafficPolicy") or {}), "mode": policy}
    return yaml.safe_dump(mesh, sort_keys=False)


def outbound_policy(mesh_text: str) -> str:
    mesh = yaml.safe_load(mesh_text) or {}
    return ((mesh.get("outboundTrafficPolicy") or {}).get("mode")) or "ALLOW_ANY"


def write_mesh(cluster: ClusterLike, mesh_text: str) -> None:
    patch = json.dumps({"data": {"mesh": mesh_text}})
    cluster.kubectl(
        "patch", "configmap", MESH_CONFIGMAP, "-n", MESH_NAMESPACE, "--type", "merge", "-p", patch
    )


# -- preserved objects -----------------------------------------------------------------------------
def save_objects(cluster: ClusterLike, refs: Iterable[ObjectRef]) -> list[dict[str, Any]]:
    """Read the objects as they are now, one `kubectl get kind,kind NAME -n NS` per name."""
    groups: dict[tuple[str, str], list[str]] = {}
    for ref in refs:
        groups.setdefault((ref.namespace, ref.name), []).append(ref.kind.lower())
    saved: list[dict[str, Any]] = []
    for (namespace, name), kinds in groups.items():
        data = cluster.kubectl_json("get", ",".join(kinds), name, "-n", namespace)
        saved += [strip_server_fields(item) for item in data.get("items", [data])]
    return saved


def restore_objects(cluster: ClusterLike, saved: list[dict[str, Any]], timeout: float) -> None:
    """Put the saved objects back exactly: a JSON merge patch from what is there now to the snapshot,
    so fields the scenario added are removed too (lists are replaced whole, maps key by key). That
    includes the `kubectl.kubernetes.io/last-applied-configuration` annotation the scenario's client-side
    apply added to objects `istioctl install` had created server-side without one."""
    for snapshot in saved:
        kind, metadata = snapshot["kind"].lower(), snapshot["metadata"]
        where = (kind, metadata["name"], "-n", metadata["namespace"])
        current = cluster.kubectl_json("get", *where, timeout=timeout)
        patch = merge_patch_between(strip_server_fields(current), snapshot)
        if patch:
            cluster.kubectl("patch", *where, "--type", "merge", "-p", json.dumps(patch), timeout=timeout)
            if kind == "deployment" and "spec" in patch:
                # A changed pod template rolls new pods: wait, so the next scenario (and the leak
                # check's successor) meets the installed gateway, not one half-way through a rollout.
                cluster.kubectl(
                    "rollout",
                    "status",
                    f"deployment/{metadata['name']}",
                    "-n",
                    metadata["namespace"],
                    f"--timeout={int(timeout)}s",
                    timeout=timeout + 30,
                )


def merge_patch_between(current: Any, wanted: Any) -> Any:
    """The RFC 7386 merge patch that turns `current` into `wanted` (None-valued keys delete)."""
    if not (isinstance(current, dict) and isinstance(wanted, dict)):
        return copy.deepcopy(wanted)
    patch: dict[str, Any] = {key: None for key in current if key not in wanted}
    for key, value in wanted.items():
        if key not in current:
            patch[key] = copy.deepcopy(value)
        elif current[key] != value:
            patch[key] = merge_patch_between(current[key], value)
    return patch


def strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    metadata = obj.get("metadata", {})
    for key in _SERVER_METADATA:
        metadata.pop(key, None)
    return obj


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as the leak check compares it: also without what controllers rewrite on their own."""
    obj = strip_server_fields(obj)
    annotations = obj.get("metadata", {}).get("annotations") or {}
    for key in _CONTROLLER_ANNOTATIONS:
        annotations.pop(key, None)
    if "annotations" in obj.get("metadata", {}) and not annotations:
        obj["metadata"].pop("annotations")
    return obj


def object_key(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata", {})
    namespace = metadata.get("namespace")
    return (
        f"{obj.get('kind')} {namespace}/{metadata.get('name')}"
        if namespace
        else f"{obj.get('kind')} {metadata.get('name')}"
    )


def describe(objects: list[dict[str, Any]]) -> str:
    return ", ".join(object_key(o) for o in objects)


# -- leak check ------------------------------------------------------------------------------------
@dataclass
class Baseline:
    namespaces: frozenset[str]
    istio: dict[str, str]
    mesh: str
    objects: list[dict[str, Any]] = field(default_factory=list)

    @property
    def preserved(self) -> dict[str, str]:
        return {object_key(o): _fingerprint(comparable(o)) for o in self.objects}


def take_baseline(cluster: ClusterLike, preserve: Iterable[ObjectRef] = ()) -> Baseline:
    namespaces = cluster.kubectl_json("get", "namespaces")
    istio = cluster.kubectl_json("get", ",".join(ISTIO_KINDS), "-A")
    refs = list(preserve)
    return Baseline(
        namespaces=frozenset(item["metadata"]["name"] for item in namespaces.get("items", [])),
        istio={object_key(item): _fingerprint(item.get("spec")) for item in istio.get("items", [])},
        mesh=read_mesh(cluster),
        objects=save_objects(cluster, refs) if refs else [],
    )


def leaks(before: Baseline, after: Baseline) -> list[str]:
    """What differs, one phrase per object, named so a person can find it."""
    found = [f"left behind: Namespace {n}" for n in sorted(after.namespaces - before.namespaces)]
    found += [f"gone: Namespace {n}" for n in sorted(before.namespaces - after.namespaces)]
    found += [f"left behind: {key}" for key in sorted(set(after.istio) - set(before.istio))]
    found += [f"gone: {key}" for key in sorted(set(before.istio) - set(after.istio))]
    found += [
        f"changed: {key}"
        for key in sorted(set(before.istio) & set(after.istio))
        if before.istio[key] != after.istio[key]
    ]
    if after.mesh != before.mesh:
        found.append(
            f"changed: ConfigMap {MESH_NAMESPACE}/{MESH_CONFIGMAP} data.mesh "
            f"(outboundTrafficPolicy {outbound_policy(before.mesh)} before, {outbound_policy(after.mesh)} now)"
        )
    for key, print_before in sorted(before.preserved.items()):
        if after.preserved.get(key) != print_before:
            found.append(f"not restored: {key} differs from its snapshot")
    return found


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
