"""Getting at a running lab: a shell, kubectl, the Kiali tunnel, and evidence on demand."""

from __future__ import annotations

import os
import shutil
import sys
import threading

from lab import evidence
from lab.cluster import Cluster
from lab.config import Settings
from lab.errors import LabError
from lab.lab import Lab
from lab.progress import Progress
from lab.steps.ssh import ssh_config_path, write_ssh_config

KIALI_PORT = 20001


def ssh(settings: Settings, node: str) -> None:
    """Replace this process with an interactive ssh to the node, using the lab's pinned config."""
    lab = Lab.load(settings)
    lab.node(node)  # a clear error for an unknown node name
    config = ssh_config_path(lab)
    write_ssh_config(lab)  # cheap, and never stale after the stack was re-created
    binary = shutil.which("ssh")
    if binary is None:
        raise LabError("the `ssh` command is not installed", "install an OpenSSH client")
    os.execv(binary, ["ssh", "-F", str(config), node])


def kubectl(settings: Settings, args: list[str]) -> int:
    cluster = Cluster.for_lab(settings)
    result = cluster.kubectl(*args, check=False)
    print(result.stdout, end="")
    if result.stderr:
        print(result.stderr, end="", file=sys.stderr)
    return result.exit_code


def kiali(settings: Settings, local_port: int = KIALI_PORT, progress: Progress | None = None) -> None:
    """Tunnel localhost:<port> to Kiali's Service over SSH until Ctrl-C."""
    out = progress or Progress()
    cluster = Cluster.for_lab(settings)
    service = cluster.kubectl_json("get", "service", "kiali", "-n", "istio-system")
    address = service.get("spec", {}).get("clusterIP")
    if not address:
        raise LabError("Kiali has no ClusterIP", "run `invoke up` to finish installing the add-ons")
    node = cluster.node
    node.connect()
    assert node._connection is not None
    with node._connection.forward_local(local_port, remote_port=KIALI_PORT, remote_host=address):
        out.info(f"Kiali: http://localhost:{local_port}/kiali  (Ctrl-C to close the tunnel)")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            out.info("Tunnel closed.")


def logs(settings: Settings, progress: Progress | None = None) -> None:
    out = progress or Progress()
    lab = Lab.load(settings)
    nodes = lab.nodes()
    with out.step("Collecting evidence from every node") as step:
        bundle = evidence.collect(nodes, lab.dir, "collected on demand by `invoke logs`")
        step.detail(f"in {bundle}")
    for node in nodes:
        node.close()
