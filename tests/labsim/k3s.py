"""What a fresh k3s cluster has before anyone applies anything: its nodes and kube-system.

k3s-io/k3s v1.30.5+k3s1: the packaged components in manifests/ (coredns, local-path-provisioner,
metrics-server; traefik is left out, as the lab's user data disables it; servicelb's svclb pods are
not simulated), node labels `node-role.kubernetes.io/control-plane` and `master` on servers,
instance type `k3s`, provider id `k3s://NODE`. Node conditions as the kubelet reports them
(kubernetes/kubernetes 1.30 pkg/kubelet/nodestatus/setters.go: `KubeletReady`, `kubelet is posting
ready status`; NotReady while the CNI is not initialised). Addresses are k3s's defaults (service
CIDR 10.43.0.0/16, `kubernetes` 10.43.0.1, kube-dns 10.43.0.10, pods 10.42.N.0/24), not the lab's
`--service-cidr 10.10.200.0/24 --cluster-cidr 172.16.0.0/16`: nothing the lab checks reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .kinds import iso
from .workloads import create_deployment, deployment, namespace_object, service

if TYPE_CHECKING:
    from .cluster import State


def node_object(node: str, index: int, info: dict, joined: float, ready: bool) -> dict:
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": node,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "k3s",
    }
    if index == 0:
        labels["node-role.kubernetes.io/control-plane"] = "true"
        labels["node-role.kubernetes.io/master"] = "true"
    condition = {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": "KubeletReady" if ready else "KubeletNotReady",
        "message": "kubelet is posting ready status"
        if ready
        else "container runtime network not ready: NetworkReady=false "
        "reason:NetworkPluginNotReady message:Network plugin returns error: "
        "cni plugin not initialized",
        "lastHeartbeatTime": iso(joined),
        "lastTransitionTime": iso(joined),
    }
    pressure = [
        {"type": t, "status": "False", "reason": f"KubeletHasSufficient{r}"}
        for t, r in (("MemoryPressure", "Memory"), ("DiskPressure", "Disk"), ("PIDPressure", "PID"))
    ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node,
            "labels": labels,
            "uid": info["instance_id"],
            "creationTimestamp": iso(joined),
        },
        "spec": {"podCIDR": f"10.42.{index}.0/24", "providerID": f"k3s://{node}"},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": info.get("private_ip", "")},
                {"type": "Hostname", "address": node},
            ],
            "conditions": [*pressure, condition],
            "nodeInfo": {
                "architecture": "amd64",
                "containerRuntimeVersion": "containerd://1.7.21-k3s2",
                "kernelVersion": "6.5.0-1024-aws",
                "kubeletVersion": info["k3s_version"],
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.5 LTS",
            },
        },
    }


def seed(state: State) -> None:
    """What a fresh k3s server runs before anyone applies anything."""
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        state.put(namespace_object(name))
    state.put(service("default", "kubernetes", "10.43.0.1", [("https", 443, 6443)], {}))
    state.put(
        service("kube-system", "kube-dns", "10.43.0.10", [("dns-tcp", 53, 53)], {"k8s-app": "kube-dns"})
    )
    for name, labels, image in (
        ("coredns", {"k8s-app": "kube-dns"}, "rancher/mirrored-coredns-coredns:1.11.3"),
        (
            "local-path-provisioner",
            {"app": "local-path-provisioner"},
            "rancher/local-path-provisioner:v0.0.28",
        ),
        ("metrics-server", {"k8s-app": "metrics-server"}, "rancher/mirrored-metrics-server:v0.7.0"),
    ):
        create_deployment(state, deployment("kube-system", name, labels, name, image), 0.0)
