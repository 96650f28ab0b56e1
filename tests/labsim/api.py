"""Writes the way the API server does them: apply (create or update), delete, patch, label."""

from __future__ import annotations

import copy
import json

from . import strategic, workloads
from .cluster import KubeError, State, merge_patch
from .kinds import BY_KIND, Kind

CARRIED = ("uid", "creationTimestamp", "generation")


def resolve(state: State, doc: dict, source: str) -> Kind:
    api_version, kind_name = doc.get("apiVersion", ""), doc.get("kind", "")
    metadata = doc.get("metadata") or {}
    kind = BY_KIND.get(kind_name)
    if kind is None or api_version not in kind.api_versions or not state.served(kind):
        raise KubeError(
            f'error: resource mapping not found for name: "{metadata.get("name", "")}" '
            f'namespace: "{metadata.get("namespace", "")}" from "{source}": no matches for kind '
            f'"{kind_name}" in version "{api_version}"\nensure CRDs are installed first'
        )
    if not metadata.get("name"):
        raise KubeError(
            f"error: error when retrieving current configuration of:\nResource: "
            f'"{kind.resource}", from "{source}": resource name may not be empty'
        )
    return kind


def place(state: State, kind: Kind, doc: dict, namespace: str | None, source: str) -> dict:
    """A copy of `doc` with its namespace settled, or kubectl's error."""
    doc = copy.deepcopy(doc)
    metadata = doc["metadata"]
    if not kind.namespaced:
        metadata.pop("namespace", None)
        return doc
    own = metadata.get("namespace")
    if own and namespace and own != namespace:
        raise KubeError(
            f'error: the namespace from the provided object "{own}" does not match the namespace'
            f" \"{namespace}\". You must pass '--namespace={own}' to perform this operation."
        )
    metadata["namespace"] = own or namespace or "default"
    if not state.get("Namespace", "", metadata["namespace"]):
        raise KubeError(
            f'Error from server (NotFound): error when creating "{source}": '
            f'namespaces "{metadata["namespace"]}" not found'
        )
    return doc


def apply(state: State, doc: dict, namespace: str | None, source: str, dry_run: str) -> tuple[str, str]:
    """Create or update one object, as kubectl 1.30's client-side apply does (kubernetes/kubectl
    v0.30.5 `pkg/cmd/apply/apply.go` `applyOneObject`). Returns kubectl's stdout line, e.g.
    `service/kiali configured`, and what it writes to stderr (the missing-annotation warning).
    `dry_run` is kubectl's --dry-run: none, client (nothing sent: `(dry run)`, an existing object is
    always `configured`) or server (the patch is computed and sent: `(server dry run)`)."""
    kind = resolve(state, doc, source)
    doc = place(state, kind, doc, namespace, source)
    metadata = doc["metadata"]
    label = f"{kind.qualified}/{metadata['name']}"
    suffix = {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")
    old = state.get(kind.kind, metadata.get("namespace", ""), metadata["name"])
    if old is None:
        if dry_run == "none":
            # `CreateApplyAnnotation`: the new object carries its own JSON as last-applied
            created = copy.deepcopy(doc)
            created["metadata"]["annotations"] = {
                **(metadata.get("annotations") or {}),
                strategic.LAST_APPLIED: strategic.last_applied(doc),
            }
            create(state, created)
        return f"{label} created{suffix}", ""
    if dry_run == "client":
        return f"{label} configured{suffix}", ""
    warning = ""
    if strategic.LAST_APPLIED not in (old["metadata"].get("annotations") or {}):
        # apply.go `warningNoLastAppliedConfigAnnotation`, written to ErrOut; `info.ObjectName()`
        # is `<resource>.<group>/<name>`
        warning = (
            f"Warning: resource {kind.resource}/{metadata['name']} is missing the "
            f"{strategic.LAST_APPLIED} annotation which is required by kubectl apply. kubectl apply "
            "should only be used on resources created declaratively by either kubectl create "
            "--save-config or kubectl apply. The missing annotation will be patched automatically."
        )
    # patcher.go `patchSimple`: strategic merge patch for built-in kinds, JSON merge patch for
    # custom resources (their API does not accept application/strategic-merge-patch+json)
    patched, empty = strategic.apply_patch(kind.kind, not kind.istio, old, doc)
    if empty:
        return f"{label} unchanged{suffix}", warning
    if dry_run == "server":
        return f"{label} configured{suffix}", warning
    update(state, kind, old, patched)
    return f"{label} configured", warning


def create(state: State, doc: dict) -> None:
    kind = doc["kind"]
    if kind == "Namespace":
        namespace = workloads.namespace_object(doc["metadata"]["name"], doc["metadata"].get("labels"))
        namespace["metadata"]["annotations"] = doc["metadata"].get("annotations") or {}
        state.put(namespace)
    elif kind == "Deployment":
        workloads.create_deployment(state, doc, state.config.delays.pod_ready, pulls=True)
    elif kind == "Pod":
        workloads.create_pod(state, doc, state.config.delays.pod_ready, None, pulls=True)
    else:
        if kind == "Service":
            workloads.allocate_service(state, doc, None)
        state.put(doc)


def update(state: State, kind: Kind, old: dict, patched: dict) -> None:
    """Store the patched object; the server keeps what it owns (uid, creation time, generation)."""
    new = copy.deepcopy(patched)
    for field in CARRIED:
        if field in old["metadata"]:
            new["metadata"][field] = old["metadata"][field]
    if kind.kind == "Pod":
        # kubernetes/kubernetes 1.30 pkg/apis/core/validation `ValidatePodUpdate`
        if _without_images(old.get("spec")) != _without_images(new.get("spec")):
            raise KubeError(
                f'The Pod "{old["metadata"]["name"]}" is invalid: spec: Forbidden: pod updates '
                "may not change fields other than `spec.containers[*].image`, "
                "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                "`spec.tolerations` (only additions to existing tolerations), "
                "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                "previously negative)"
            )
        state.put(new)
        return
    replace(state, old, new)


def _without_images(spec: dict | None) -> dict:
    spec = copy.deepcopy(spec or {})
    for group in ("containers", "initContainers"):
        for container in spec.get(group) or []:
            container.pop("image", None)
    return spec


def replace(state: State, old: dict, new: dict) -> None:
    """Store `new` in place of `old`, with the side effects a controller would have."""
    if new["kind"] == "Namespace":
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = new["metadata"]["name"]
        new.setdefault("status", {"phase": "Active"})
    if new["kind"] == "Service":
        workloads.allocate_service(state, new, old)
    if new["kind"] == "Deployment":
        changed = any(old["spec"].get(f) != new.get("spec", {}).get(f) for f in ("template", "replicas"))
        new["metadata"]["generation"] = old["metadata"].get("generation", 1) + changed
        state.put(new)
        if changed:
            workloads.roll(state, new)
        return
    state.put(new)


def find(state: State, kind: Kind, namespace: str | None, name: str) -> dict:
    obj = state.get(kind.kind, (namespace or "default") if kind.namespaced else "", name)
    if obj is None:
        raise KubeError(f'Error from server (NotFound): {kind.resource} "{name}" not found')
    return obj


def patch(state: State, obj: dict, kind: Kind, body: str, patch_type: str) -> str:
    """`kubectl patch`: kubernetes/kubectl v0.30.5 pkg/cmd/patch/patch.go (--type json|merge|strategic,
    strategic by default); the server applies RFC 6902, RFC 7386 or apimachinery's strategic merge."""
    try:
        change = json.loads(body)
    except json.JSONDecodeError as error:
        raise KubeError(f'error: unable to parse "{body}": {error}') from None
    before = copy.deepcopy(obj)
    if patch_type == "json":
        patched = json_patch(before, change)
    elif patch_type == "merge":
        patched = merge_patch(before, change)
    elif patch_type != "strategic":
        raise KubeError(f'error: --type must be one of [json merge strategic], not "{patch_type}"')
    elif kind.istio:
        # custom resources accept no strategic merge patch (apiextensions-apiserver)
        raise KubeError(
            "Error from server (UnsupportedMediaType): the body of the request was in an unknown "
            "format - accepted media types include: application/json-patch+json, "
            "application/merge-patch+json, application/apply-patch+yaml"
        )
    else:
        schema = strategic.SCHEMAS.get(kind.kind, {"metadata": strategic.OBJECT_META})
        patched = strategic.merge(before, change, schema)
    label = f"{kind.qualified}/{obj['metadata']['name']}"
    if patched == obj:
        return f"{label} patched (no change)"
    replace(state, obj, patched)
    return f"{label} patched"


def json_patch(target: dict, operations: list) -> dict:
    """RFC 6902 add / replace / remove, enough for kubectl --type=json."""
    for operation in operations:
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in operation["path"].lstrip("/").split("/")
        ]
        node = target
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if operation["op"] == "remove":
                node.pop(index)
            elif operation["op"] == "add":
                node.insert(index, operation["value"])
            else:
                node[index] = operation["value"]
        elif operation["op"] == "remove":
            node.pop(last, None)
        else:
            node[last] = operation["value"]
    return target


def label(state: State, obj: dict, kind: Kind, changes: list[str], overwrite: bool) -> str:
    labels = obj["metadata"].setdefault("labels", {})
    before = dict(labels)
    for change in changes:
        if change.endswith("-") and "=" not in change:
            labels.pop(change[:-1], None)
            continue
        name, _, value = change.partition("=")
        if not overwrite and name in labels and labels[name] != value:
            raise KubeError(f"error: '{name}' already has a value ({labels[name]}), and --overwrite is false")
        labels[name] = value
    title = f"{kind.qualified}/{obj['metadata']['name']}"
    if labels == before:
        return f"{title} not labeled"
    state.put(obj)
    # kubectl v0.30.5 pkg/cmd/label/label.go `updateDataChangeMsg`: "unlabeled" only without
    # --overwrite and when the object's JSON got shorter; any other change is "labeled"
    shorter = len(json.dumps(labels, separators=(",", ":"))) < len(json.dumps(before, separators=(",", ":")))
    return f"{title} {'unlabeled' if shorter and not overwrite else 'labeled'}"


def delete(state: State, obj: dict, kind: Kind) -> str:
    state.remove(obj)
    return f'{kind.qualified} "{obj["metadata"]["name"]}" deleted'
