"""A config applied for one trace, and put back after it, with the scenario engine's undo.

The learner's own files may re-declare installed objects (the study notes re-declare the demo
egress gateway's Service and Deployment): every Service or Deployment in them that already exists
is saved first and restored exactly, as a scenario's `preserve` list does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import LabError
from lab.progress import Progress
from lab.scenario import pending
from lab.scenario.cluster_state import (
    Baseline,
    ClusterLike,
    leaks,
    mesh_with_policy,
    outbound_policy,
    take_baseline,
    write_mesh,
)
from lab.scenario.model import ObjectRef
from lab.scenario.undo import Undo, load_documents
from lab.state import write_private

KEPT_RECORD = "trace.json"  # in the kept folder `invoke scenario` cleans up before it starts
_SAVED_KINDS = ("Service", "Deployment")


@dataclass
class Applied:
    files: list[Path]
    policy: str | None = None  # outboundTrafficPolicy to set while tracing
    undo: Undo = field(default_factory=Undo)
    baseline: Baseline | None = None
    preserve: tuple[ObjectRef, ...] = ()


def manifest_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise LabError(f"{path}: no such file or folder", "give manifest files or folders")
    if not files:
        raise LabError("no manifest (.yaml, .yml) in the given paths", "give manifest files or folders")
    return files


def installed_refs(cluster: ClusterLike, files: list[Path]) -> tuple[ObjectRef, ...]:
    """Services and Deployments the files declare that exist already."""
    declared = {
        ObjectRef(d["kind"], (d.get("metadata") or {}).get("namespace") or "default", d["metadata"]["name"])
        for f in files
        for d in load_documents(f)
        if d.get("kind") in _SAVED_KINDS and (d.get("metadata") or {}).get("name")
    }
    if not declared:
        return ()
    existing = cluster.kubectl_json("get", "services,deployments", "-A").get("items", [])
    present = {ObjectRef(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in existing}
    return tuple(sorted(declared & present, key=str))


def apply(cluster: ClusterLike, applied: Applied, progress: Progress) -> None:
    with progress.step("snapshot namespaces, Istio resources and mesh config"):
        applied.preserve = applied.preserve or installed_refs(cluster, applied.files)
        applied.baseline = take_baseline(cluster, applied.preserve)
        applied.undo.objects = applied.baseline.objects
    if applied.preserve:
        progress.info(f"  saved {', '.join(map(str, applied.preserve))}: restored exactly in cleanup")
    if applied.policy and outbound_policy(applied.baseline.mesh) != applied.policy:
        with progress.step(f"mesh: outboundTrafficPolicy {applied.policy}"):
            applied.undo.mesh = applied.baseline.mesh
            write_mesh(cluster, mesh_with_policy(applied.baseline.mesh, applied.policy))
    for path in applied.files:
        with progress.step(f"apply {path}") as handle:
            applied.undo.add_manifest(path, applied.preserve)  # before: a partial apply is undone too
            answer = cluster.kubectl("apply", "-f", "-", stdin=path.read_text(), timeout=120)
            for line in answer.stdout.strip().splitlines():
                handle.detail(line)


def clean_up(cluster: ClusterLike, applied: Applied, progress: Progress) -> list[str]:
    """Undo everything, then compare with the snapshot; the problems, if any."""
    problems: list[str] = []
    for label, action in applied.undo.actions():
        try:
            with progress.step(f"clean up: {label}"):
                action(cluster)
        except LabError as error:
            problems.append(f"clean up: {label}: {error}")
    if applied.baseline is None or problems:
        return problems
    with progress.step("leak check: namespaces, Istio resources, mesh config, saved objects") as handle:
        found = leaks(applied.baseline, take_baseline(cluster, applied.preserve))
        for item in found:
            handle.detail(item)
    return problems + found


def keep(applied: Applied, kept_dir: Path, progress: Progress) -> None:
    write_private(kept_dir / KEPT_RECORD, applied.undo.to_json() + "\n")
    progress.info("kept (--keep): `invoke trace --to URL` traces it; the next `invoke scenario` cleans it up")
    for line in applied.undo.summary():
        progress.info(f"  - {line}")


def finish_kept(cluster: ClusterLike, kept_dir: Path, progress: Progress) -> None:
    """Clean up what an earlier `--keep` left, so this trace starts from the installed lab."""
    for record in sorted(kept_dir.glob("*.json")) if kept_dir.is_dir() else []:
        progress.info(f"cleaning up what `--keep` left of {record.stem}")
        for label, action in Undo.from_file(record).actions():
            with progress.step(f"clean up: {label}"):
                action(cluster)
        record.unlink()


def finish_pending(cluster: ClusterLike, lab_dir: Path, progress: Progress) -> None:
    """A scenario's cleanup abandoned with a second Ctrl-C (saved in the lab's state): finished
    first, so this trace starts from the installed lab; a failure keeps it pending."""
    left = pending.load(lab_dir)
    if left is None:
        return
    owner, undo = left
    progress.info(f"finishing the cleanup that {owner} left pending")
    for label, action in undo.actions():
        with progress.step(f"clean up: {label}"):
            action(cluster)
    pending.clear(lab_dir)
