"""NetworkPolicy egress as k3s enforces it.

k3s v1.30 runs kube-router's network policy controller inside its agent (k3s-io/k3s release-1.30
pkg/agent/netpol/netpol.go; go.mod replaces cloudnativelabs/kube-router/v2 with k3s-io/kube-router
v2.1.2) unless started with --disable-network-policy, which the lab's template does not pass.
kube-router v2.1.2 pkg/controllers/netpol/pod.go sends every packet from a pod through that pod's
firewall chain (`-s POD_IP`, interceptPodOutboundTraffic) once some policy with policyType Egress
selects the pod; what no egress rule marks as allowed hits `-j REJECT` (dropUnmarkedTrafficRules),
which answers with ICMP port-unreachable, so connect() fails at once with ECONNREFUSED.

Peers follow the NetworkPolicy API (k8s.io/api networking/v1 types.go): podSelector alone means
pods of the policy's namespace, namespaceSelector alone every pod of the selected namespaces, both
together the selected pods there, ipBlock a CIDR minus `except`; no `to` means anywhere, no `ports`
every port. Named ports and endPort are not simulated (no scenario uses them).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .scheduling import _selects

if TYPE_CHECKING:
    from .cluster import State


@dataclass(frozen=True)
class Destination:
    """Where a pod's own connection goes: another pod, or an address outside the cluster."""

    port: int
    protocol: str = "TCP"
    pod: dict | None = None
    ip: str | None = None


def _policies(state: State, pod: dict) -> list[dict]:
    namespace = pod["metadata"]["namespace"]
    labels = pod["metadata"].get("labels") or {}
    found = []
    for policy in state.objects("NetworkPolicy", namespace):
        spec = policy.get("spec") or {}
        types = spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])
        if "Egress" in types and _selects(spec.get("podSelector") or {}, labels):
            found.append(policy)
    return found


def _namespace_labels(state: State, name: str) -> dict:
    namespace = state.get("Namespace", "", name) or {"metadata": {}}
    return {**(namespace["metadata"].get("labels") or {}), "kubernetes.io/metadata.name": name}


def _peer_matches(state: State, policy: dict, peer: dict, where: Destination) -> bool:
    if "ipBlock" in peer:
        if where.ip is None:
            return False
        block = peer["ipBlock"]
        address = ipaddress.ip_address(where.ip)
        return address in ipaddress.ip_network(block["cidr"], strict=False) and not any(
            address in ipaddress.ip_network(e, strict=False) for e in block.get("except") or []
        )
    if where.pod is None:
        return False
    namespace = where.pod["metadata"]["namespace"]
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"] or {}, _namespace_labels(state, namespace)):
            return False
    elif namespace != policy["metadata"]["namespace"]:
        return False
    return _selects(peer.get("podSelector") or {}, where.pod["metadata"].get("labels") or {})


def _port_matches(rule: dict, where: Destination) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    return any(
        p.get("protocol", "TCP") == where.protocol and p.get("port") in (None, where.port) for p in ports
    )


def allows(state: State, pod: dict, where: Destination) -> bool:
    """Whether the pod's egress policies let this connection out (no policy: everything goes)."""
    policies = _policies(state, pod)
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("egress") or []:
            peers = rule.get("to")
            if _port_matches(rule, where) and (
                not peers or any(_peer_matches(state, policy, peer, where) for peer in peers)
            ):
                return True
    return False


def resolves(state: State, pod: dict) -> bool:
    """Whether the pod may ask CoreDNS (kube-system, k8s-app=kube-dns, UDP 53) for a name."""
    dns = next(
        (
            p
            for p in state.objects("Pod", "kube-system")
            if (p["metadata"].get("labels") or {}).get("k8s-app") == "kube-dns"
        ),
        None,
    )
    return dns is None or allows(state, pod, Destination(53, "UDP", pod=dns))
