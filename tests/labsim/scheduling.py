"""Where a new pod runs: the two kube-scheduler filters the scenarios use, then round robin.

- `spec.nodeSelector`: every pair must be a label of the node (kube-scheduler's NodeAffinity filter,
  kubernetes/kubernetes v1.30.5, k3s v1.30.5+k3s1's, pkg/scheduler/framework/plugins/nodeaffinity; node labels as in k3s.py).
- `spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution`: no node whose
  `topologyKey` value equals that of a node running a pod the term's labelSelector selects, in the
  term's `namespaces` (default: the pod's own) (InterPodAffinity filter, same tree, plugins/interpodaffinity).
No node left: the pod stays Pending with a FailedScheduling event, as kube-scheduler leaves it.
Preferred (soft) terms and node affinity expressions are not simulated: no scenario uses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import CLUSTER_NODES

if TYPE_CHECKING:
    from .cluster import State


def node_labels(node: str) -> dict[str, str]:
    # The labels every k3s node carries that a selector would name (k3s.py node_object).
    return {"kubernetes.io/hostname": node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}


def _selects(selector: dict, labels: dict) -> bool:
    """A metav1.LabelSelector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _repelled(state: State, pod: dict, node: str) -> bool:
    anti = ((pod["spec"].get("affinity") or {}).get("podAntiAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or []
    for term in anti:
        key = term.get("topologyKey", "kubernetes.io/hostname")
        namespaces = term.get("namespaces") or [pod["metadata"]["namespace"]]
        for other in state.objects("Pod"):
            placed = other["spec"].get("nodeName")
            if (
                placed
                and other["metadata"]["namespace"] in namespaces
                and other["metadata"].get("name") != pod["metadata"].get("name")
                and _selects(term.get("labelSelector") or {}, other["metadata"].get("labels") or {})
                and node_labels(placed).get(key) == node_labels(node).get(key)
            ):
                return True
    return False


def feasible(state: State, pod: dict) -> list[str]:
    wanted = pod["spec"].get("nodeSelector") or {}
    return [
        node
        for node in CLUSTER_NODES
        if all(node_labels(node).get(k) == v for k, v in wanted.items()) and not _repelled(state, pod, node)
    ]


def place(state: State, pod: dict) -> str | None:
    """The node for a new pod (round robin over the feasible ones), or None: it stays Pending."""
    nodes = feasible(state, pod)
    if not nodes:
        return None
    return nodes[state.next_number("podPlacement", 0) % len(nodes)]


def unschedulable_message(pod: dict) -> str:
    # kube-scheduler's FailedScheduling event text for these two filters (schedule_one.go, FitError).
    total = len(CLUSTER_NODES)
    if pod["spec"].get("nodeSelector"):
        return f"0/{total} nodes are available: {total} node(s) didn't match Pod's node affinity/selector."
    return f"0/{total} nodes are available: {total} node(s) didn't match pod anti-affinity rules."
