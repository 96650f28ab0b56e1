"""Evidence bundles: what a person would look at when `up` fails, collected before they ask.

Collection is best effort: a node that does not answer is noted in the bundle, never fatal.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from lab.cluster import KUBECONFIG
from lab.lab import CLUSTER_NODES, NODE_NAMES
from lab.nodes import Node, in_parallel
from lab.state import write_private

KUBE = f"KUBECONFIG={KUBECONFIG} kubectl"
PER_NODE = {
    "cloud-init-output.log": "sudo tail -n 200 /var/log/cloud-init-output.log",
    "cloud-init-status.txt": "cloud-init status --long",
}
SERVER_ONLY = {
    "k3s.journal.txt": "sudo journalctl -u k3s --no-pager -n 200",
    "pods-events.json": f"{KUBE} get pods,events -A -o json",
    "nodes.json": f"{KUBE} get nodes -o json",
    "istiod.log": f"{KUBE} logs -n istio-system deployment/istiod --tail=200",
    "istio-egressgateway.log": f"{KUBE} logs -n istio-system deployment/istio-egressgateway --tail=200",
    "istio-ingressgateway.log": f"{KUBE} logs -n istio-system deployment/istio-ingressgateway --tail=200",
}
AGENT_ONLY = {"k3s-agent.journal.txt": "sudo journalctl -u k3s-agent --no-pager -n 200"}
COMMAND_TIMEOUT = 30.0
CONNECT_DEADLINE = 15.0


def bundle_dir(lab_dir: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return lab_dir / "logs" / stamp


def collect(nodes: list[Node], lab_dir: Path, reason: str) -> Path:
    """Write the evidence of every reachable node to a new bundle folder; return the folder."""
    folder = bundle_dir(lab_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(folder / "REASON.txt", reason.rstrip() + "\n")

    def gather(node: Node) -> None:
        # A node that does not answer now is noted, not waited for: the user is waiting.
        node.connect_deadline = min(node.connect_deadline, CONNECT_DEADLINE)
        try:
            node.connect()
        except Exception as error:  # evidence is best effort: note it and go on
            write_private(folder / node.name / "UNREACHABLE.txt", f"{error}\n")
            return
        commands = dict(PER_NODE)
        if node.name == "k3s-s":
            commands.update(SERVER_ONLY)
        elif node.name in CLUSTER_NODES:
            commands.update(AGENT_ONLY)
        for filename, command in commands.items():
            target = folder / node.name / filename
            try:
                result = node.run(command, check=False, timeout=COMMAND_TIMEOUT)
                text = (
                    result.stdout
                    if result.ok
                    else f"# exit {result.exit_code}\n{result.stdout}{result.stderr}"
                )
            except Exception as error:  # evidence is best effort: note it and go on
                text = f"# could not collect: {error}\n"
            write_private(target, text)

    try:
        in_parallel([n for n in nodes if n.name in NODE_NAMES], gather)
    except Exception as error:  # a node down is itself evidence
        write_private(folder / "COLLECTION-ERRORS.txt", f"{error}\n")
    return folder
