"""What every `up` step shares: the context they pass along, and the Step shape.

Each step checks whether its work is already done (and is then skipped), otherwise acts.
Steps are idempotent, so a re-run of `up` resumes where the last one stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from lab.cloud import Cloud
from lab.cluster import SERVER, Cluster
from lab.config import Settings
from lab.lab import Lab
from lab.nodes import Node
from lab.progress import Progress, StepHandle


@dataclass
class UpContext:
    settings: Settings
    lab: Lab
    progress: Progress
    handle: StepHandle | None = None
    _nodes: dict[str, Node] = field(default_factory=dict)
    # What a step's `done` check read, so that its `run` need not ask the cluster again.
    seen: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @cached_property
    def cloud(self) -> Cloud:
        return Cloud(self.settings.region, self.settings.profile)

    def node(self, name: str) -> Node:
        """One connection per node for the whole run."""
        if name not in self._nodes:
            self._nodes[name] = self.lab.node(name)
        return self._nodes[name]

    def nodes(self, names: tuple[str, ...]) -> list[Node]:
        return [self.node(n) for n in names if n in self.lab.state.nodes]

    @cached_property
    def cluster(self) -> Cluster:
        return Cluster(self.node(SERVER), self.lab.state.versions.get("istio", self.settings.istio_version))

    def note(self, text: str) -> None:
        if self.handle is not None:
            self.handle.note(text)

    def detail(self, text: str) -> None:
        if self.handle is not None:
            self.handle.detail(text)

    def warn(self, text: str) -> None:
        """Worth the user's attention but not a failure: shown now and again in the summary."""
        self.warnings.append(text)
        if self.handle is not None:
            self.handle.warn(text)

    def close(self) -> None:
        for node in self._nodes.values():
            node.close()


class Step:
    """One named unit of `up`. Subclasses set `name`/`title` and implement `done` and `run`."""

    name: ClassVar[str]
    title: ClassVar[str]
    # Steps before the nodes exist have no remote evidence to collect when they fail.
    remote: ClassVar[bool] = True

    def done(self, ctx: UpContext) -> bool:
        return False

    def run(self, ctx: UpContext) -> None:
        raise NotImplementedError
