"""What a scenario must undo, as data: so `--keep` can leave it on disk for the next run to finish."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.errors import LabError
from lab.scenario.cluster_state import ClusterLike, describe, outbound_policy, restore_objects, write_mesh
from lab.scenario.model import ObjectRef

CLEANUP_TIMEOUT = 300.0
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


@dataclass
class Undo:
    deletes: list[tuple[str, str]] = field(
        default_factory=list
    )  # (file name, its documents reversed, as YAML)
    objects: list[dict[str, Any]] = field(default_factory=list)  # installed objects to patch back
    mesh: str | None = None  # the mesh config text to write back

    def add_manifest(self, path: Path, preserved: tuple[ObjectRef, ...]) -> None:
        """Remember how to delete what `path` creates, except installed objects it re-declares."""
        if any(label == path.name for label, _ in self.deletes):
            return
        keep = {str(ref) for ref in preserved}
        docs = [d for d in load_documents(path) if _ref(d) not in keep]
        if docs:
            self.deletes.append((path.name, yaml.safe_dump_all(list(reversed(docs)), sort_keys=False)))

    def actions(self) -> list[tuple[str, Callable[[ClusterLike], object]]]:
        """Cleanup in reverse order of the changes: manifests last-applied first, then snapshots, then mesh."""
        actions: list[tuple[str, Callable[[ClusterLike], object]]] = [
            (f"delete {label}", _deleter(text)) for label, text in reversed(self.deletes)
        ]
        if self.objects:
            objects = self.objects
            actions.append(
                (
                    f"restore {describe(objects)}",
                    lambda cluster: restore_objects(cluster, objects, CLEANUP_TIMEOUT),
                )
            )
        if self.mesh is not None:
            mesh = self.mesh
            actions.append(
                (
                    f"restore the mesh config (outboundTrafficPolicy {outbound_policy(mesh)})",
                    lambda c: write_mesh(c, mesh),
                )
            )
        return actions

    def summary(self) -> list[str]:
        lines = [f"resources of {label}" for label, _ in self.deletes]
        lines += [f"{describe(self.objects)} as the scenario re-declared them"] if self.objects else []
        lines += ["the mesh config as the scenario set it"] if self.mesh is not None else []
        return lines

    def to_json(self) -> str:
        return json.dumps({"deletes": self.deletes, "objects": self.objects, "mesh": self.mesh}, indent=2)

    def after(self, done: int) -> Undo:
        """What is left once the first `done` of `actions()` ran (an abandoned cleanup's remainder)."""
        count = len(self.deletes)
        if done <= count:
            return Undo(self.deletes[: count - done], self.objects, self.mesh)
        done -= count
        if self.objects:
            if done == 0:
                return Undo([], self.objects, self.mesh)
            done -= 1
        return Undo([], [], self.mesh if done == 0 else None)

    @classmethod
    def from_file(cls, path: Path) -> Undo:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise LabError(f"{path}: unreadable record of a kept scenario ({error})", "delete the file") from None
        return cls.from_data(data, str(path))

    @classmethod
    def from_data(cls, data: object, where: str) -> Undo:
        try:
            assert isinstance(data, dict)
            return cls([tuple(d) for d in data["deletes"]], data["objects"], data["mesh"])  # type: ignore[misc]
        except (AssertionError, KeyError, TypeError, ValueError) as error:
            raise LabError(f"{where}: unreadable record of a scenario's cleanup ({error!r})", "delete it") from None


def load_documents(path: Path) -> list[dict[str, Any]]:
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError) as error:
        raise LabError(f"{path}: cannot read manifest: {str(error).splitlines()[0]}") from None
    return [d for d in docs if isinstance(d, dict)]


def _ref(doc: dict[str, Any]) -> str:
    metadata = doc.get("metadata") or {}
    namespace = None if doc.get("kind") in _CLUSTER_SCOPED else metadata.get("namespace", "default")
    return f"{doc.get('kind')} {namespace}/{metadata.get('name')}"


def _deleter(text: str) -> Callable[[ClusterLike], object]:
    return lambda cluster: cluster.kubectl(
        "delete", "-f", "-", "--ignore-not-found", "--wait=true", stdin=text, timeout=CLEANUP_TIMEOUT
    )
