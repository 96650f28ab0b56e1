"""The simulator's network rules on their own: NetworkPolicy egress (kube-router), the scheduler's
nodeSelector and pod anti-affinity filters, curl's --resolve and a refused upstream's log line."""

from __future__ import annotations

from tests.labsim import netpol, scheduling
from tests.labsim.egress import Curl, mark_upstream_failure, resolved


class Objects:
    """Just what the rules read of the simulated cluster: objects by kind and namespace."""

    def __init__(self, *objects: dict) -> None:
        self.items = list(objects)
        self.counter = 0

    def objects(self, kind: str | None = None, namespace: str | None = None) -> list[dict]:
        return [
            o
            for o in self.items
            if kind in (None, o["kind"]) and namespace in (None, o["metadata"].get("namespace", ""))
        ]

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        return next((o for o in self.objects(kind) if o["metadata"]["name"] == name), None)

    def next_number(self, counter: str, start: int) -> int:
        self.counter += 1
        return start + self.counter - 1


def pod(namespace: str, name: str, labels: dict | None = None, node: str | None = None) -> dict:
    spec = {"nodeName": node} if node else {}
    return {
        "kind": "Pod",
        "metadata": {"namespace": namespace, "name": name, "labels": labels or {}},
        "spec": spec,
    }


def namespace(name: str) -> dict:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": {}}}


FENCE = {
    "kind": "NetworkPolicy",
    "metadata": {"namespace": "fenced", "name": "fence"},
    "spec": {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}}}]},
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}],
            },
            {
                "to": [{"ipBlock": {"cidr": "192.168.10.0/24", "except": ["192.168.10.10/32"]}}],
                "ports": [{"port": 80}],
            },
        ],
    },
}
CLIENT = pod("fenced", "client")
GATEWAY = pod("istio-system", "gw", {"istio": "egressgateway"})
DNS = pod("kube-system", "coredns", {"k8s-app": "kube-dns"})
OTHER_KUBE_SYSTEM = pod("kube-system", "metrics-server", {"k8s-app": "metrics-server"})


def cluster() -> Objects:
    names = ("fenced", "istio-system", "kube-system", "default")
    return Objects(FENCE, CLIENT, GATEWAY, DNS, OTHER_KUBE_SYSTEM, *(namespace(n) for n in names))


def test_a_fenced_pod_reaches_only_what_an_egress_rule_names() -> None:
    state = cluster()
    assert netpol.allows(state, CLIENT, netpol.Destination(8443, pod=GATEWAY))
    assert netpol.resolves(state, CLIENT)
    assert not netpol.allows(state, CLIENT, netpol.Destination(53, "TCP", pod=DNS)), "UDP only"
    assert not netpol.allows(state, CLIENT, netpol.Destination(53, "UDP", pod=OTHER_KUBE_SYSTEM))
    assert not netpol.allows(state, CLIENT, netpol.Destination(443, ip="203.0.113.24"))
    assert netpol.allows(state, CLIENT, netpol.Destination(80, ip="192.168.10.200"))
    assert not netpol.allows(state, CLIENT, netpol.Destination(80, ip="192.168.10.10")), "except"
    assert not netpol.allows(state, CLIENT, netpol.Destination(443, ip="192.168.10.200")), "port 80 only"


def test_pods_no_policy_selects_go_anywhere() -> None:
    state = cluster()
    outside = pod("default", "pod1")
    assert netpol.allows(state, outside, netpol.Destination(443, ip="203.0.113.24"))
    ingress_only = {**FENCE, "spec": {**FENCE["spec"], "policyTypes": ["Ingress"]}}
    assert netpol.allows(Objects(ingress_only, CLIENT), CLIENT, netpol.Destination(443, ip="203.0.113.24"))


def test_node_selector_and_anti_affinity_pick_the_node() -> None:
    pod1 = pod("default", "pod1", {"lab/client": "pod1"}, node="k3s-w1")
    state = Objects(pod1)
    pinned = pod("istio-system", "gw")
    pinned["spec"] = {"nodeSelector": {"kubernetes.io/hostname": "k3s-w2"}}
    assert scheduling.feasible(state, pinned) == ["k3s-w2"]
    away = pod("istio-system", "gw")
    term = {
        "labelSelector": {"matchLabels": {"lab/client": "pod1"}},
        "namespaces": ["default"],
        "topologyKey": "kubernetes.io/hostname",
    }
    away["spec"] = {
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    }
    assert scheduling.feasible(state, away) == ["k3s-s", "k3s-w2"]
    nowhere = pod("istio-system", "gw")
    nowhere["spec"] = {"nodeSelector": {"kubernetes.io/hostname": "k3s-w1"}, **away["spec"]}
    assert scheduling.place(state, nowhere) is None
    assert "didn't match Pod's node affinity/selector" in scheduling.unschedulable_message(nowhere)


def test_resolve_connects_to_the_given_address_for_that_host_and_port_only() -> None:
    request = Curl(
        ["-sS", "--resolve", "testpc.lab.internal:80:192.168.10.200", "http://testpc.lab.internal/"]
    )
    assert resolved(request, "testpc.lab.internal", 80) == "192.168.10.200"
    assert resolved(request, "testpc.lab.internal", 443) is None
    assert resolved(request, "other.lab.internal", 80) is None


def test_a_refused_upstream_marks_the_line_uf_with_nothing_sent() -> None:
    line = (
        '[2024-11-26T12:27:03.251Z] "- - -" 0 - - - "-" 839 4213 57 - "-" "-" "-" "-" '
        '"203.0.113.24:443" PassthroughCluster 10.42.1.5:41000 203.0.113.24:443 10.42.1.5:39000 - -'
    )
    assert mark_upstream_failure(line) == line.replace('0 - - - "-" 839 4213', '0 UF - - "-" 0 0')
