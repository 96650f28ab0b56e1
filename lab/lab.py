"""A Lab: its settings, its state on disk, and the nodes it can reach."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab import lock
from lab.config import Settings
from lab.errors import LabError
from lab.nodes import Node
from lab.state import LabState, load_state, save_state

NODE_NAMES = ("k3s-s", "k3s-w1", "k3s-w2", "testpc")
CLUSTER_NODES = NODE_NAMES[:3]


@dataclass
class Lab:
    settings: Settings
    state: LabState

    @property
    def dir(self) -> Path:
        return self.settings.lab_dir

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def key_file(self) -> Path:
        if self.state.key_file:
            return Path(self.state.key_file)
        return self.dir / f"{self.settings.own_key_name}.pem"

    @classmethod
    def load(cls, settings: Settings) -> Lab:
        state = load_state(settings.lab_dir)
        if state is None:
            raise LabError(
                f"no lab named '{settings.name}' in {settings.home}",
                "run `invoke up` first, or pass --name / set LAB_NAME",
            )
        return cls(settings, state)

    @classmethod
    def load_or_new(cls, settings: Settings) -> Lab:
        state = load_state(settings.lab_dir) or LabState(
            name=settings.name, region=settings.region, stack_name=settings.stack_name
        )
        return cls(settings, state)

    def save(self) -> None:
        held = lock.current()
        if held is not None and not held.still_ours():
            return  # `invoke down` is deleting the lab: its folder is archived, or about to be
        save_state(self.dir, self.state)

    def node(self, name: str) -> Node:
        info = self.state.nodes.get(name)
        if info is None:
            raise LabError(
                f"node '{name}' is not in lab '{self.settings.name}'",
                f"known nodes: {', '.join(self.state.nodes) or 'none yet: run `invoke up`'}",
            )
        return Node(
            name,
            info.public_ip,
            user=self.settings.ssh_user,
            port=self.settings.ssh_port,
            key_file=self.key_file,
            known_hosts=self.known_hosts,
            connect_deadline=self.settings.ssh_timeout,
        )

    def nodes(self, names: tuple[str, ...] = NODE_NAMES) -> list[Node]:
        return [self.node(name) for name in names if name in self.state.nodes]
