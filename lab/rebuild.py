"""`invoke up --rebuild NODE`: replace one node's instance, keeping its fixed private address.

CloudFormation replaces an instance by creating the new one before deleting the old, and two
instances cannot hold one private address (EC2 refuses the second with InvalidIPAddress.InUse).
So the node goes in two stack updates: one with a template that lacks the node (its instance and
Elastic IP are deleted), then one with the whole template again (a new instance, a new disk, the
same private address). Every parameter keeps its previous value, the k3s token included.
"""

from __future__ import annotations

import json

from lab.cloud import format_event
from lab.errors import LabError, UsageError
from lab.lab import CLUSTER_NODES, NODE_NAMES
from lab.state import write_private
from lab.steps.base import UpContext
from lab.steps.cloudinit import FAILED_FACT
from lab.steps.stack import require_ours
from lab.template import NODE_OUTPUTS, load_template, template_body

UPDATE_TIMEOUT = 30 * 60.0
SETTLED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")
# What `up` recorded about the nodes it reached: void for a new instance, so checked again.
NODE_STEPS = ("ssh", "cloud-init", "nodes-ready")
CREATE_PARAMETERS = (
    "LabName", "InstanceType", "K3sVersion", "K3sToken", "SshCidr", "KeyName", "DeadlineRoleName",
)


def template_without(node: str) -> str:
    """The lab's template minus one node: its instance, its Elastic IP and their outputs."""
    key = NODE_OUTPUTS[node]
    template = load_template()
    for resource in (key, f"{key}Eip"):
        template["Resources"].pop(resource)
    for output in (f"{key}PublicIp", f"{key}PrivateIp"):
        template["Outputs"].pop(output)
    return json.dumps(template)


def rebuild(ctx: UpContext, node: str) -> None:
    if node not in NODE_NAMES:
        raise UsageError(f"unknown node '{node}' to rebuild", f"nodes: {', '.join(NODE_NAMES)}")
    cloud, state = ctx.cloud, ctx.lab.state
    info = cloud.stack(state.stack_id or ctx.settings.stack_name)
    if info is None or info.status not in SETTLED:
        raise LabError(
            f"no settled stack {ctx.settings.stack_name} to rebuild {node} in"
            + (f" (it is {info.status})" if info else ""),
            "run `invoke up` first" if info is None else "wait for it to settle, then try again",
        )
    require_ours(info, state.owner)
    with ctx.progress.step(f"Replacing {node} with a new instance (two stack updates)") as handle:
        ctx.handle = handle
        if node in CLUSTER_NODES and node != "k3s-s" and "k3s-s" in state.nodes:
            _forget_in_cluster(ctx, node)
        # The parameters `up` passed at creation, as they are; the others (the AMI's SSM parameter)
        # take their defaults again, as at creation. A NoEcho one (the k3s token) reads back as
        # asterisks, so CloudFormation is told to keep its previous value.
        previous = {
            k: None if set(v) == {"*"} else v for k, v in info.parameters.items() if k in CREATE_PARAMETERS
        }
        for body, what in ((template_without(node), f"removing {node}"), (template_body(), f"adding {node} back")):
            handle.detail(what)
            old = {event["EventId"] for event in cloud.events(info.stack_id)}  # the stack's history
            cloud.update_stack(info.stack_id, body, previous)
            cloud.wait_for_stack(
                info.stack_id,
                done=("UPDATE_COMPLETE",),
                timeout=UPDATE_TIMEOUT,
                on_event=lambda event, old=old: None if event["EventId"] in old else handle.note(format_event(event)),  # type: ignore[misc]
            )
        ctx.handle = None
    _forget_node(ctx, node)


def _forget_in_cluster(ctx: UpContext, node: str) -> None:
    """k3s keeps a node's password (a Secret) until its Node object is deleted, and refuses a new
    instance that joins under the same name with another password: delete the Node first."""
    try:
        ctx.cluster.kubectl("delete", "node", node, "--ignore-not-found", "--wait=false", timeout=60)
    except LabError as error:
        ctx.detail(f"could not delete Node {node} from the cluster ({error}); k3s may refuse the new instance")


def _forget_node(ctx: UpContext, node: str) -> None:
    state = ctx.lab.state
    old = state.nodes.pop(node, None)
    for step in NODE_STEPS:
        state.steps.pop(step, None)
    failed = [n for n in state.facts.get(FAILED_FACT) or [] if n != node]
    if failed:
        state.facts[FAILED_FACT] = failed
    else:
        state.facts.pop(FAILED_FACT, None)
    ctx._nodes.pop(node, None)
    known = ctx.lab.known_hosts
    if old is not None and known.exists():
        # The new instance has a new host key: forget the old one (pinned by address and port).
        port = ctx.settings.ssh_port
        host = old.public_ip if port == 22 else f"[{old.public_ip}]:{port}"  # OpenSSH's spelling
        lines = [line for line in known.read_text().splitlines() if line.split(" ", 1)[0] != host]
        write_private(known, "".join(f"{line}\n" for line in lines))
    ctx.lab.save()
