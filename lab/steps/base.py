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
from lab.spec import LabSpec


@dataclass
class UpContext:
    settings: Settings
    lab: Lab
    progress: Progress
    handle: StepHandle | None = None
    _nodes: dict[str, Node] = field(default_factory=dict)
    # What a step's `done` check read, so that its `run` need not ask the cluster again.
    seen: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def cloud(self) -> Cloud:
        spec = self.lab.state.spec
        return Cloud(spec.region if spec else self.settings.region, self.settings.profile)

    @property
    def spec(self) -> LabSpec:
        assert self.lab.state.spec is not None, "preflight builds the spec first"
        return self.lab.state.spec

    def node(self, name: str) -> Node:
        """One connection per node for the whole run."""
        if name not in self._nodes:
            self._nodes[name] = self.lab.node(name)
        return self._nodes[name]

    def nodes(self, names: tuple[str, ...]) -> list[Node]:
        return [self.node(n) for n in names if n in self.lab.state.nodes]

    @cached_property
    def cluster(self) -> Cluster:
        spec = self.lab.state.spec
        return Cluster(self.node(SERVER), spec.istio_version if spec else self.settings.istio_version)

    def note(self, text: str) -> None:
        if self.handle is not None:
            self.handle.note(text)

    def detail(self, text: str) -> None:
        if self.handle is not None:
            self.handle.detail(text)

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
        """Whether the work is there already. Reads only (it may keep what it read in `ctx.seen`)."""
        return False

    def record(self, ctx: UpContext) -> None:
        """After `done` said yes: put what it read into the state (nodes, ports), if anything."""

    def run(self, ctx: UpContext) -> None:
        raise NotImplementedError
