"""ssh: reach every node (retrying while they boot), pin host keys, write an ssh_config."""

from __future__ import annotations

from pathlib import Path

from lab.lab import NODE_NAMES, Lab
from lab.nodes import Node, in_parallel
from lab.state import write_private
from lab.steps.base import Step, UpContext


class Ssh(Step):
    name = "ssh"
    title = "Connecting to the nodes over SSH"

    def done(self, ctx: UpContext) -> bool:
        return ctx.lab.state.step_done(self.name) and ssh_config_path(ctx.lab).exists()

    def run(self, ctx: UpContext) -> None:
        def connect(node: Node) -> None:
            node.connect(on_wait=ctx.note)

        in_parallel(ctx.nodes(NODE_NAMES), connect)
        write_ssh_config(ctx.lab)
        ctx.detail(
            f"host keys pinned in {ctx.lab.known_hosts}; `ssh -F {ssh_config_path(ctx.lab)} k3s-s` works"
        )


def ssh_config_path(lab: Lab) -> Path:
    return lab.dir / "ssh_config"


def write_ssh_config(lab: Lab) -> None:
    blocks = []
    for name, info in lab.state.nodes.items():
        blocks.append(
            f"Host {name}\n"
            f"  HostName {info.public_ip}\n"
            f"  User {lab.settings.ssh_user}\n"
            f"  Port {lab.settings.ssh_port}\n"
            f"  IdentityFile {lab.key_file.resolve()}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {lab.known_hosts.resolve()}\n"
            "  StrictHostKeyChecking yes\n"
        )
    write_private(ssh_config_path(lab), "\n".join(blocks))
