"""What every `up` step shares: the context they pass along, and the Step shape.

Each step checks whether its work is already done (and is then skipped), otherwise acts.
Steps are idempotent, so a re-run of `up` resumes where the last one stopped.
"""

from __future__ import annotations

import copy
import threading
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


class Stopped(Exception):
    """A step gave up because a step it needs failed or was stopped; that step reports why."""

    def __init__(self, by: str) -> None:
        super().__init__(f"step '{by}' did not finish")
        self.stopped_by = f"step '{by}' did not finish"


class Waits:
    """What a step can wait for while it runs: other steps' outcomes (set by the pipeline)."""

    def __init__(self) -> None:
        self._finished: dict[str, threading.Event] = {}
        self._ok: dict[str, bool] = {}
        self._lock = threading.Lock()

    def event(self, name: str) -> threading.Event:
        with self._lock:
            return self._finished.setdefault(name, threading.Event())

    def finish(self, name: str, ok: bool) -> None:
        self._ok[name] = ok
        self.event(name).set()

    def failed(self, name: str) -> bool:
        return self.event(name).is_set() and not self._ok.get(name, False)

    def ok(self, name: str) -> bool:
        return self._ok.get(name, False)


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
    waits: Waits = field(default_factory=Waits)
    _shared: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def cloud(self) -> Cloud:
        # one client for every step's context (see `for_step`), in the spec's region once it exists
        if "cloud" not in self._shared:
            spec = self.lab.state.spec
            self._shared["cloud"] = Cloud(spec.region if spec else self.settings.region, self.settings.profile)
        return self._shared["cloud"]

    @property
    def spec(self) -> LabSpec:
        assert self.lab.state.spec is not None, "preflight builds the spec first"
        return self.lab.state.spec

    def for_step(self, handle: StepHandle) -> UpContext:
        """The context one step runs with: its own progress line, everything else shared."""
        child = copy.copy(self)
        child.__dict__.pop("cluster", None)
        child.handle = handle
        return child

    def wait_for(self, step: str) -> None:
        """Block until another step has finished; `Stopped` if it did not succeed."""
        event = self.waits.event(step)
        if not event.is_set():
            if self.handle is None:
                event.wait()
            else:
                with self.handle.blocked_on(f"step '{step}'"):
                    event.wait()
        if not self.waits.ok(step):
            raise Stopped(step)

    def check_not_failed(self, step: str) -> None:
        """For a step polling for something another step makes: stop if that step failed."""
        if self.waits.failed(step):
            raise Stopped(step)

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
        """Whether the work is there already. Reads only (it may keep what it read in `ctx.seen`)."""
        return False

    def record(self, ctx: UpContext) -> None:
        """After `done` said yes: put what it read into the state (nodes, ports), if anything."""

    def run(self, ctx: UpContext) -> None:
        raise NotImplementedError
