"""Writes the way the API server does them: apply (create or update), delete, patch, label."""

from __future__ import annotations

import copy
import json

from . import workloads
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


def apply(state: State, doc: dict, namespace: str | None, source: str, dry_run: bool) -> str:
    """Create or update one object; returns kubectl's line, e.g. `service/kiali configured`."""
    kind = resolve(state, doc, source)
    doc = place(state, kind, doc, namespace, source)
    metadata = doc["metadata"]
    label = f"{kind.qualified}/{metadata['name']}"
    suffix = " (server dry run)" if dry_run else ""
    old = state.get(kind.kind, metadata.get("namespace", ""), metadata["name"])
    if old is None:
        if not dry_run:
            applied = copy.deepcopy(doc)
            create(state, doc)
            state.meta(doc)["applied"] = applied
        return f"{label} created{suffix}"
    meta = state.meta(old)
    previous = meta.get("applied")
    # kubectl's three-way patch (kubernetes/kubectl staging/src/k8s.io/kubectl/pkg/cmd/apply/patcher.go)
    # is computed from the last applied config, the new one and the live object: it is empty, and the
    # object "unchanged", only when the live object still has every field the file sets.
    if previous == doc and _holds(old, doc):
        return f"{label} unchanged{suffix}"
    if dry_run:
        return f"{label} configured{suffix}"
    update(state, kind, old, doc, previous)
    state.meta(old)["applied"] = copy.deepcopy(doc)
    line = f"{label} configured"
    if previous is None:
        line = (
            f"Warning: resource {kind.resource}/{metadata['name']} is missing the "
            "kubectl.kubernetes.io/last-applied-configuration annotation which is required "
            "by kubectl apply. kubectl apply should only be used on resources created "
            "declaratively by either kubectl create --save-config or kubectl apply. The "
            "missing annotation will be patched automatically.\n" + line
        )
    return line


def _holds(live: object, wanted: object) -> bool:
    """Whether `live` has every field of `wanted`: maps key by key; lists of objects as strategic
    merge treats lists with a merge key (containers by name, ports by port: kubernetes
    apimachinery pkg/util/strategicpatch), each wanted item held by one live item, extra live items
    (an injected sidecar) kept; other lists (args) whole."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(k in live and _holds(live[k], v) for k, v in wanted.items())
    if isinstance(wanted, list) and wanted and all(isinstance(item, dict) for item in wanted):
        return isinstance(live, list) and all(any(_holds(a, b) for a in live) for b in wanted)
    return live == wanted


def create(state: State, doc: dict) -> None:
    kind = doc["kind"]
    if kind == "Namespace":
        state.put(workloads.namespace_object(doc["metadata"]["name"], doc["metadata"].get("labels")))
    elif kind == "Deployment":
        workloads.create_deployment(state, doc, state.config.delays.pod_ready)
    elif kind == "Pod":
        workloads.create_pod(state, doc, state.config.delays.pod_ready, None)
    else:
        if kind == "Service":
            workloads.allocate_service(state, doc, None)
        state.put(doc)


def _three_way(old: dict, new: dict, previous: dict | None, field: str) -> dict:
    """Keep what others set (not in our last apply); take ours for the rest."""
    mine = ((previous or {}).get("metadata") or {}).get(field) or {}
    kept = {k: v for k, v in (old["metadata"].get(field) or {}).items() if k not in mine}
    return {**kept, **(new["metadata"].get(field) or {})}


def update(state: State, kind: Kind, old: dict, doc: dict, previous: dict | None) -> None:
    new = copy.deepcopy(doc)
    for field in ("labels", "annotations"):
        new["metadata"][field] = _three_way(old, doc, previous, field)
    for field in CARRIED:
        if field in old["metadata"]:
            new["metadata"][field] = old["metadata"][field]
    if kind.kind == "Pod":
        if (previous or {}).get("spec", old.get("spec")) != doc.get("spec"):
            raise KubeError(
                f'The Pod "{doc["metadata"]["name"]}" is invalid: spec: Forbidden: pod updates '
                "may not change fields other than `spec.containers[*].image`, "
                "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                "`spec.tolerations` (only additions to existing tolerations), "
                "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                "previously negative)"
            )
        old["metadata"]["labels"] = new["metadata"]["labels"]
        old["metadata"]["annotations"].update(new["metadata"]["annotations"])
        state.put(old)
        return
    replace(state, old, new)


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
    try:
        change = json.loads(body)
    except json.JSONDecodeError as error:
        raise KubeError(f'error: unable to parse "{body}": {error}') from None
    before = copy.deepcopy(obj)
    patched = json_patch(before, change) if patch_type == "json" else merge_patch(before, change)
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
    return f"{title} {'labeled' if len(labels) >= len(before) else 'unlabeled'}"


def delete(state: State, obj: dict, kind: Kind) -> str:
    state.remove(obj)
    return f'{kind.qualified} "{obj["metadata"]["name"]}" deleted'
