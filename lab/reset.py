"""`invoke reset`: the lab back to how `up` left it, after `--keep`, a half-finished cleanup or a
learner's own experiments; it lists what it will remove or restore, then (asked, or `--yes`) does it.

How `up` leaves the cluster: k3s's own namespaces plus istio-system, no Istio config resource, the
demo profile as `istioctl manifest generate` renders it (gateways, istiod, the mesh config), the
`default` namespace labelled for injection, and the netshoot pods with their sidecars.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from lab import lock
from lab.cluster import Cluster
from lab.config import Settings
from lab.errors import LabError, UsageError
from lab.lab import Lab
from lab.progress import Progress
from lab.scenario import pending
from lab.scenario.cluster_state import ISTIO_KINDS, object_key
from lab.scenario.undo import Undo
from lab.steps import STEP_NAMES
from lab.steps.base import UpContext
from lab.steps.istio import ISTIO_DEPLOYMENTS, NAMESPACE, drift, install
from lab.steps.netshoot import PODS, Netshoot

# Namespaces a fresh k3s server has, plus the one the Istio install creates.
INSTALLED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease", NAMESPACE)
# Labels of `default` after up: the API server's own, and the injection label the netshoot step sets.
DEFAULT_LABELS = {"kubernetes.io/metadata.name": "default", "istio-injection": "enabled"}
TIMEOUT = 300.0


@dataclass
class Change:
    what: str
    do: Callable[[], object]
    # refs (kind namespace/name) this change deletes, so later findings do not list them twice
    covers: frozenset[str] = frozenset()


def reset(settings: Settings, yes: bool = False, progress: Progress | None = None) -> int:
    out = progress or Progress()
    with lock.hold(settings.lab_dir, "reset"):
        lab = Lab.load(settings)
        ctx = UpContext(settings, lab, out)
        for step in STEP_NAMES:  # outside `up`'s pipeline: what a step waits for is there already
            ctx.waits.finish(step, True)
        try:
            return _reset(ctx, yes)
        finally:
            ctx.close()


def _reset(ctx: UpContext, yes: bool) -> int:
    out, name = ctx.progress, ctx.settings.name
    with out.step(f"Comparing lab '{name}' with how `invoke up` left it") as handle:
        changes = survey(ctx)
        handle.detail(f"{len(changes)} change(s) to make" if changes else "nothing differs")
    if not changes:
        out.info(f"Nothing to reset: lab '{name}' is as `invoke up` left it.")
        return 0
    out.info(f"`invoke reset` will, on lab '{name}':")
    for change in changes:
        out.info(f"  - {change.what}")
    if not yes and not _confirmed(name):
        out.info("Nothing changed.")
        return 1
    for change in changes:
        with out.step(change.what):
            change.do()
    out.info(f"Lab '{name}' is as `invoke up` left it.")
    return 0


def _confirmed(name: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError(
            "`invoke reset` asks before it changes the lab, and this is not a terminal",
            "pass --yes to reset without asking",
        )
    return input(f"Reset lab '{name}'? [y/N] ").strip().lower() in ("y", "yes")


def survey(ctx: UpContext) -> list[Change]:
    """What differs from how `up` left the lab, as changes in the order they are made."""
    cluster, lab_dir = ctx.cluster, ctx.lab.dir
    changes: list[Change] = []
    left = pending.load(lab_dir)
    if left is not None:
        owner, undo = left
        changes.append(
            _undo_change(
                f"finish the cleanup that {owner} left pending ({'; '.join(undo.summary())})",
                undo,
                cluster,
                lambda: pending.clear(lab_dir),
            )
        )
    for record in sorted((lab_dir / "kept").glob("*.json")) if (lab_dir / "kept").is_dir() else []:
        undo = Undo.from_file(record)
        changes.append(
            _undo_change(
                f"clean up what `--keep` left of {record.stem} ({'; '.join(undo.summary())})",
                undo,
                cluster,
                lambda path=record: path.unlink(missing_ok=True),  # type: ignore[misc]
            )
        )
    covered = frozenset().union(*(c.covers for c in changes))
    changes += _istio_resources(cluster, covered)
    changes += _namespaces(cluster, covered)
    changes += _labels_and_selectors(cluster)
    found = drift(cluster)
    if found:
        changes.append(
            Change(
                f"restore the installed gateways, istiod and the mesh config ({'; '.join(found)})",
                lambda: _reinstall(ctx),
            )
        )
    netshoot = Netshoot()
    if not netshoot.done(ctx):
        changes.append(Change(f"recreate the netshoot pods ({', '.join(PODS)})", lambda: netshoot.run(ctx)))
    return changes


def _undo_change(what: str, undo: Undo, cluster: Cluster, then: Callable[[], object]) -> Change:
    def do() -> None:
        for _label, action in undo.actions():
            action(cluster)
        then()

    refs = {object_key(_placed(d)) for _, text in undo.deletes for d in yaml.safe_load_all(text) if d}
    return Change(what, do, frozenset(refs))


def _placed(doc: dict[str, Any]) -> dict[str, Any]:
    """A manifest document named as the API server names it (namespaced kinds get `default`)."""
    metadata = dict(doc.get("metadata") or {})
    if doc.get("kind") != "Namespace":
        metadata.setdefault("namespace", "default")
    return {**doc, "metadata": metadata}


def _istio_resources(cluster: Cluster, covered: frozenset[str]) -> list[Change]:
    items = cluster.kubectl_json("get", ",".join(ISTIO_KINDS), "-A").get("items", [])
    changes = []
    for item in items:
        key = object_key(item)
        if key in covered:
            continue
        kind, metadata = item["kind"], item["metadata"]
        changes.append(
            Change(
                f"delete {key} (up creates no Istio resource)",
                lambda k=kind, n=metadata["name"], ns=metadata["namespace"]: cluster.kubectl(  # type: ignore[misc]
                    "delete", k, n, "-n", ns, "--ignore-not-found", timeout=TIMEOUT
                ),
            )
        )
    return changes


def _namespaces(cluster: Cluster, covered: frozenset[str]) -> list[Change]:
    names = [i["metadata"]["name"] for i in cluster.kubectl_json("get", "namespaces").get("items", [])]
    return [
        Change(
            f"delete Namespace {name} and everything in it (up did not create it)",
            lambda n=name: cluster.kubectl(  # type: ignore[misc]
                "delete", "namespace", n, "--ignore-not-found", "--wait=true", timeout=TIMEOUT
            ),
        )
        for name in names
        if name not in INSTALLED_NAMESPACES and f"Namespace {name}" not in covered
    ]


def _labels_and_selectors(cluster: Cluster) -> list[Change]:
    changes = []
    namespace = cluster.kubectl_json("get", "namespace", "default")
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    extra = sorted(k for k in labels if k not in DEFAULT_LABELS)
    if extra:
        changes.append(
            Change(
                f"remove label(s) {', '.join(extra)} from Namespace default",
                lambda: cluster.kubectl("label", "namespace", "default", *(f"{k}-" for k in extra)),
            )
        )
    deployments = cluster.kubectl_json("get", "deployments", "-n", NAMESPACE).get("items", [])
    for item in deployments:
        name = item["metadata"]["name"]
        selector = ((item.get("spec") or {}).get("template") or {}).get("spec", {}).get("nodeSelector")
        if name in ISTIO_DEPLOYMENTS and selector:
            remove = json.dumps([{"op": "remove", "path": "/spec/template/spec/nodeSelector"}])
            changes.append(
                Change(
                    f"remove the nodeSelector {selector} of Deployment {NAMESPACE}/{name}",
                    lambda n=name, p=remove: cluster.kubectl(  # type: ignore[misc]
                        "patch", "deployment", n, "-n", NAMESPACE, "--type", "json", "-p", p
                    ),
                )
            )
    return changes


def _reinstall(ctx: UpContext) -> None:
    if not drift(ctx.cluster):
        return  # an earlier change (a finished cleanup) already put them back
    install(ctx)
    left = drift(ctx.cluster)
    if left:
        raise LabError(
            f"the install did not restore: {'; '.join(left)}", "`invoke down` then `invoke up` for a new lab"
        )
