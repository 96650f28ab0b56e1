"""`kubectl apply` on an object that exists: the three-way patch kubectl computes and the API server
applies. Read from kubernetes/kubectl v0.30.5 (kubectl 1.30) `pkg/cmd/apply/apply.go`
(`applyOneObject`), `pkg/cmd/apply/patcher.go` (`patchSimple`), `pkg/util/apply.go`
(`GetModifiedConfiguration`), and kubernetes/apimachinery v0.30.5 `pkg/util/strategicpatch/patch.go`
(`CreateThreeWayMergePatch`, `diffMaps`, `diffLists`, `mergeMap`, `mergeSlice`,
`mergePatchIntoOriginal`, `mergeSortedSlice`) and `pkg/util/jsonmergepatch/patch.go`
(`CreateThreeWayJSONMergePatch`).

- original: the object's `kubectl.kubernetes.io/last-applied-configuration` annotation, or nothing
  (objects created by `istioctl install`, which applies server-side: istio/istio 1.23.2
  `operator/pkg/helmreconciler/apply.go`, `client.Patch(..., client.Apply, ...)`, carry none);
- modified: the file's object with that annotation set to its own JSON;
- current: the object on the server.
The patch is "current -> modified, without deletions" plus "original -> modified, deletions only":
with no original nothing is ever removed. Built-in kinds get a strategic merge patch (lists with a
merge key merge item by item, other lists are replaced); custom resources (Istio's) a JSON merge
patch (every list replaced). The merge keys are the `patchStrategy`/`patchMergeKey` struct tags of
kubernetes/api v0.30.5 `core/v1/types.go` and `apps/v1/types.go` for the fields the lab's objects use.

Not imitated: `retainKeys` (Deployment `spec.strategy`, pod `volumes`), `$patch: replace`,
conflict detection (kubectl apply always overwrites), openapi schemas of CRDs.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ORDER = "$setElementOrder/"
DELETE_FROM = "$deleteFromPrimitiveList/"


@dataclass(frozen=True)
class Merge:
    """A list merged item by item: maps by `key`; scalars (key None) as a set."""

    key: str | None
    item: dict[str, Any] = field(default_factory=dict)


# kubernetes/api v0.30.5 core/v1/types.go struct tags (`patchStrategy:"merge" patchMergeKey:...`)
CONTAINER = {
    "ports": Merge("containerPort"),
    "env": Merge("name"),
    "volumeMounts": Merge("mountPath"),
    "volumeDevices": Merge("devicePath"),
}
POD_SPEC = {
    "containers": Merge("name", CONTAINER),
    "initContainers": Merge("name", CONTAINER),
    "ephemeralContainers": Merge("name", CONTAINER),
    "volumes": Merge("name"),
    "imagePullSecrets": Merge("name"),
    "hostAliases": Merge("ip"),
}
OBJECT_META = {"finalizers": Merge(None), "ownerReferences": Merge("uid")}
POD_TEMPLATE = {"metadata": OBJECT_META, "spec": POD_SPEC}
WORKLOAD = {"metadata": OBJECT_META, "spec": {"template": POD_TEMPLATE}}
SCHEMAS: dict[str, dict[str, Any]] = {
    "Pod": POD_TEMPLATE,
    "Service": {"metadata": OBJECT_META, "spec": {"ports": Merge("port")}},
    "Deployment": WORKLOAD,
    "DaemonSet": WORKLOAD,
    "StatefulSet": WORKLOAD,
    "ReplicaSet": WORKLOAD,
    "Job": WORKLOAD,
}


def last_applied(doc: dict) -> str:
    """The annotation's text: the object without that annotation, as Go's encoding/json writes a
    map (sorted keys, compact, `<>&` escaped, a final newline). `GetModifiedConfiguration` sets
    `metadata.annotations` to an empty map first when the file has none, so `"annotations":{}`."""
    bare = copy.deepcopy(doc)
    annotations = bare["metadata"].setdefault("annotations", {}) or {}
    annotations.pop(LAST_APPLIED, None)
    bare["metadata"]["annotations"] = annotations
    text = json.dumps(bare, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def modified_of(doc: dict) -> dict:
    modified = copy.deepcopy(doc)
    text = last_applied(doc)
    modified["metadata"]["annotations"] = {**(doc["metadata"].get("annotations") or {}), LAST_APPLIED: text}
    return modified


def original_of(current: dict) -> dict | None:
    text = ((current.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    return json.loads(text) if text else None


def apply_patch(kind: str, strategic: bool, current: dict, doc: dict) -> tuple[dict, bool]:
    """The object the server stores after `kubectl apply` of `doc`, and whether kubectl's patch
    was empty (`patchSimple` returns early on `{}`; `applyOneObject` then prints `unchanged`)."""
    original, modified = original_of(current), modified_of(doc)
    if strategic:
        schema = SCHEMAS.get(kind, {"metadata": OBJECT_META})
        delta = diff(current, modified, schema, deletions=False, changes=True)
        removals = diff(original or {}, modified, schema, deletions=True, changes=False)
        patch = combine(removals, delta)
        return merge(copy.deepcopy(current), patch, schema), not patch
    patch = json_three_way(original or {}, modified, current)
    return json_merge(copy.deepcopy(current), patch), not patch


# -- strategic merge patch: building it ----------------------------------------------------------
def _type(value: Any) -> str:
    """Go's reflect kinds after json.Unmarshal: every number is a float64."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def diff(old: dict, new: dict, schema: dict, deletions: bool, changes: bool) -> dict:
    """`diffMaps`: `deletions` for IgnoreDeletions=false, `changes` for IgnoreChangesAndAdditions=false."""
    patch: dict[str, Any] = {}
    for name, value in new.items():
        if name not in old or _type(old[name]) != _type(value):
            if changes:
                patch[name] = copy.deepcopy(value)
            continue
        sub = schema.get(name)
        if isinstance(value, dict):
            inner = diff(old[name], value, sub if isinstance(sub, dict) else {}, deletions, changes)
            if inner:
                patch[name] = inner
        elif isinstance(value, list) and isinstance(sub, Merge):
            patch.update(_diff_list(name, old[name], value, sub, deletions, changes))
        elif changes and old[name] != value:
            patch[name] = copy.deepcopy(value)
    if deletions:
        patch.update({name: None for name in old if name not in new})
    return patch


def _diff_list(name: str, old: list, new: list, merge: Merge, deletions: bool, changes: bool) -> dict:
    """`diffLists`: the list patch, its `$deleteFromPrimitiveList` and its `$setElementOrder`."""
    if not old:
        return {name: copy.deepcopy(new)} if new and changes else {}
    out: dict[str, Any] = {}
    if merge.key is None:
        added = [v for v in new if v not in old] if changes else []
        removed = [v for v in old if v not in new] if deletions else []
        if added:
            out[name] = added
        if removed:
            out[DELETE_FROM + name] = removed
        if (deletions and removed) or (changes and old != new):
            out[ORDER + name] = list(new)
        return out
    key = merge.key
    olds = {str(item.get(key)): item for item in old}
    news = {str(item.get(key)) for item in new}
    items = []
    for item in new:
        before = olds.get(str(item.get(key)))
        if before is None:
            if changes:
                items.append(copy.deepcopy(item))
            continue
        inner = diff(before, item, merge.item, deletions, changes)
        if inner:
            items.append({**inner, key: item.get(key)})
    if deletions:
        items += [{key: item.get(key), "$patch": "delete"} for k, item in olds.items() if k not in news]
    same_order = len(old) == len(new) and all(
        str(a.get(key)) == str(b.get(key)) for a, b in zip(old, new, strict=False)
    )
    if items:
        out[name] = items
    if (changes and (items or not same_order)) or (deletions and items):
        out[ORDER + name] = [{key: item.get(key)} for item in new]
    return out


def combine(removals: dict, delta: dict) -> dict:
    """`mergeMap(deletionsMap, deltaMap)`: both were computed against `modified`, so they only meet
    in maps and in merged lists (delete directives there, additions here)."""
    out = copy.deepcopy(removals)
    for name, value in delta.items():
        if isinstance(value, dict) and isinstance(out.get(name), dict):
            out[name] = combine(out[name], value)
        elif isinstance(value, list) and isinstance(out.get(name), list) and not name.startswith(ORDER):
            out[name] = out[name] + copy.deepcopy(value)
        else:
            out[name] = copy.deepcopy(value)
    return out


# -- strategic merge patch: applying it (what the API server does) -------------------------------
def merge(current: dict, patch: dict, schema: dict) -> dict:
    """`mergeMap` with the patch kubectl sends."""
    for order_key in [k for k in patch if k.startswith(ORDER)]:
        name = order_key[len(ORDER) :]
        order, merge_spec = patch.pop(order_key), schema.get(name)
        key = merge_spec.key if isinstance(merge_spec, Merge) else None
        server = current.get(name) or []
        removed = patch.pop(DELETE_FROM + name, [])
        merged = _merge_list(list(server), patch.pop(name), merge_spec) if name in patch else list(server)
        merged = [v for v in merged if v not in removed] if key is None else merged
        current[name] = _reorder(merged, order, _live_order(server, merged, key), key)
    for name, value in patch.items():
        if name.startswith(DELETE_FROM):
            target = name[len(DELETE_FROM) :]
            current[target] = [v for v in current.get(target) or [] if v not in value]
            continue
        sub = schema.get(name)
        if value is None:
            current.pop(name, None)
        elif name not in current or _type(current[name]) != _type(value):
            current[name] = _without_directives(value)
        elif isinstance(value, dict):
            current[name] = merge(current[name], value, sub if isinstance(sub, dict) else {})
        elif isinstance(value, list) and isinstance(sub, Merge):
            server = current[name]
            merged = _merge_list(list(server), value, sub)
            order = [v for v in value if not (isinstance(v, dict) and "$patch" in v)]
            kept = (
                [v for v in merged if v in server]
                if sub.key is None
                else merged[: _kept(server, value, sub.key)]
            )
            current[name] = _reorder(merged, order, kept, sub.key)
        else:
            current[name] = copy.deepcopy(value)
    return current


def _merge_list(server: list, patch: list, spec: Any) -> list:
    """`mergeSlice`: delete directives first, then each item merged into its match or appended."""
    if not isinstance(spec, Merge) or spec.key is None:
        return server + [v for v in patch if v not in server]
    key = spec.key
    for item in patch:
        if item.get("$patch") == "delete":
            server = [s for s in server if s.get(key) != item.get(key)]
    for item in patch:
        if "$patch" in item:
            continue
        match = next((i for i, s in enumerate(server) if s.get(key) == item.get(key)), None)
        if match is None:
            server.append(_without_directives(item))
        else:
            server[match] = merge(server[match], copy.deepcopy(item), spec.item)
    return server


def _kept(server: list, patch: list, key: str) -> int:
    """How many server items survive the patch's delete directives."""
    gone = {item.get(key) for item in patch if item.get("$patch") == "delete"}
    return len([s for s in server if s.get(key) not in gone])


def _live_order(server: list, merged: list, key: str | None) -> list:
    """The server order `mergePatchIntoOriginal` compares against: Go's `originalFieldValue`, a slice
    over the array `mergeSlice` deleted from and appended to in place, so it reads the first
    len(server) items of the merged list (new items included where deletions made room)."""
    return merged[: len(server)] if key is not None else server


def _reorder(merged: list, order: list, server: list, key: str | None) -> list:
    """`normalizeElementOrder` and `mergeSortedSlice`: the patch's items in the patch's order, the
    server-only items in the server's order, interleaved where the server's order places them."""

    def ident(item: Any) -> Any:
        return item.get(key) if key is not None and isinstance(item, dict) else item

    wanted = [ident(v) for v in order]
    live = [ident(v) for v in server]
    ours = sorted((v for v in merged if ident(v) in wanted), key=lambda v: wanted.index(ident(v)))
    theirs = [v for v in merged if ident(v) not in wanted]
    out = []
    while ours or theirs:
        if not ours or (
            theirs
            and ident(theirs[0]) in live
            and ident(ours[0]) in live
            and live.index(ident(theirs[0])) < live.index(ident(ours[0]))
        ):
            out.append(theirs.pop(0))
        else:
            out.append(ours.pop(0))
    return out


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_directives(v) for k, v in value.items() if v is not None and not k.startswith("$")
        }
    if isinstance(value, list):
        return [_without_directives(v) for v in value if not (isinstance(v, dict) and "$patch" in v)]
    return copy.deepcopy(value)


# -- JSON merge patch (custom resources) ----------------------------------------------------------
def json_three_way(original: dict, modified: dict, current: dict) -> dict:
    """`CreateThreeWayJSONMergePatch`: additions and changes from current, deletions from original."""
    patch: dict[str, Any] = {}
    for name, value in modified.items():
        have = current.get(name)
        if isinstance(value, dict) and isinstance(have, dict):
            inner = json_three_way(original.get(name) or {}, value, have)
            if inner:
                patch[name] = inner
        elif name not in current or have != value:
            patch[name] = copy.deepcopy(value)
    patch.update({name: None for name in original if name not in modified})
    return patch


def json_merge(target: dict, patch: dict) -> dict:
    """RFC 7386."""
    for name, value in patch.items():
        if value is None:
            target.pop(name, None)
        elif isinstance(value, dict) and isinstance(target.get(name), dict):
            target[name] = json_merge(target[name], value)
        else:
            target[name] = _without_directives(value) if isinstance(value, dict) else copy.deepcopy(value)
    return target
