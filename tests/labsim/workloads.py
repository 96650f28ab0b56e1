"""Pods, Deployments and Nodes of the simulated cluster: creation, sidecar injection, status."""

from __future__ import annotations

import copy
import json
import random
import zlib
from typing import TYPE_CHECKING

from . import scheduling
from .config import CLUSTER_NODES
from .kinds import iso, key_of

if TYPE_CHECKING:
    from .cluster import State

ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated names
PROXY = "istio-proxy"


def _hash(value: object, length: int = 10) -> str:
    number = zlib.crc32(json.dumps(value, sort_keys=True).encode())
    return "".join(ALPHABET[(number >> (3 * i)) % len(ALPHABET)] for i in range(length))


def _suffix() -> str:
    return "".join(random.choice(ALPHABET) for _ in range(5))


def namespace_object(name: str, labels: dict | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **(labels or {})}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def service(
    namespace: str,
    name: str,
    ip: str | None,
    ports: list,
    selector: dict,
    labels: dict | None = None,
    kind: str = "ClusterIP",
) -> dict:
    spec = {
        "type": kind,
        "selector": selector,
        "ports": [{"name": n, "port": p, "targetPort": t, "protocol": "TCP"} for n, p, t in ports],
    }
    if ip:
        spec["clusterIP"] = ip
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec,
    }


def deployment(
    namespace: str,
    name: str,
    labels: dict,
    container: str,
    image: str,
    pod_labels: dict | None = None,
    annotations: dict | None = None,
) -> dict:
    template_labels = {**labels, **(pod_labels or {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": template_labels, "annotations": annotations or {}},
                "spec": {"containers": [{"name": container, "image": image}]},
            },
        },
    }


# -- services ----------------------------------------------------------------------------------
def allocate_service(state: State, svc: dict, previous: dict | None) -> None:
    """Cluster IP and node ports, kept across updates as the API server keeps them."""
    spec = svc.setdefault("spec", {})
    old = (previous or {}).get("spec", {})
    if "clusterIP" not in spec:
        number = state.next_number("serviceIP", 20)
        spec["clusterIP"] = old.get("clusterIP") or f"10.43.{number // 250}.{number % 250 + 1}"
    spec["clusterIPs"] = [spec["clusterIP"]]
    spec.setdefault("type", "ClusterIP")
    old_ports = {p.get("port"): p.get("nodePort") for p in old.get("ports", [])}
    for port in spec.get("ports", []):
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if spec["type"] in ("NodePort", "LoadBalancer") and "nodePort" not in port:
            port["nodePort"] = old_ports.get(port.get("port")) or state.next_number("nodePort", 30100)
    if spec["type"] == "LoadBalancer":
        info = state.node_info(CLUSTER_NODES[0]) or {}
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": info.get("private_ip", "")}]}}


# -- pods --------------------------------------------------------------------------------------
def owned_pods(state: State, owner: str) -> list[dict]:
    return [p for p in state.objects("Pod") if state.meta(p).get("owner") == owner]


def create_deployment(state: State, dep: dict, ready_delay: float | None) -> None:
    """Store the Deployment and start its pods; `ready_delay` None means never Ready."""
    dep["metadata"].setdefault("generation", 1)
    state.put(dep)
    state.meta(dep)["pod_ready_delay"] = ready_delay
    roll(state, dep)


def roll(state: State, dep: dict) -> None:
    """Replace the Deployment's pods with new ones from its current template."""
    owner = key_of(dep)
    for pod in owned_pods(state, owner):
        state.remove(pod)
    template = dep["spec"].get("template", {})
    template_hash = _hash(template)
    delay = state.meta(dep).get("pod_ready_delay", state.config.delays.pod_ready)
    for _ in range(int(dep["spec"].get("replicas", 1))):
        metadata = copy.deepcopy(template.get("metadata", {}))
        metadata["name"] = f"{dep['metadata']['name']}-{template_hash}-{_suffix()}"
        metadata["namespace"] = dep["metadata"]["namespace"]
        metadata.setdefault("labels", {})["pod-template-hash"] = template_hash
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{dep['metadata']['name']}-{template_hash}",
                "controller": True,
            }
        ]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": copy.deepcopy(template.get("spec", {})),
        }
        create_pod(state, pod, delay, owner)


def create_pod(state: State, pod: dict, ready_delay: float | None, owner: str | None) -> None:
    metadata = pod["metadata"]
    metadata.setdefault("labels", {})
    metadata.setdefault("annotations", {})
    spec = pod.setdefault("spec", {})
    if "nodeName" not in spec:
        placed = scheduling.place(state, pod)
        if placed is None:
            ready_delay = None  # Pending: never Ready until the constraint can be met
        else:
            spec["nodeName"] = placed
    node_index = CLUSTER_NODES.index(spec["nodeName"]) if spec.get("nodeName") in CLUSTER_NODES else 0
    injected = inject(state, pod)
    number = state.next_number("podIP", 5)
    metadata["annotations"].setdefault("labsim/pod-ip", f"10.42.{node_index}.{number}")
    state.put(pod)
    meta = state.meta(pod)
    meta.update(owner=owner, ready_at=None if ready_delay is None else state.now + ready_delay)
    for container in spec.get("containers", []):
        lines = startup_log(
            iso(state.now, fraction=True), pod, container["name"], injected, ready_delay is None
        )
        for line in lines:
            state.append_log(metadata["namespace"], metadata["name"], container["name"], line)
    if not spec.get("nodeName"):
        event(state, pod, "Warning", "FailedScheduling", scheduling.unschedulable_message(pod))
        return
    event(
        state,
        pod,
        "Normal",
        "Scheduled",
        f"Successfully assigned {metadata['namespace']}/{metadata['name']} to {spec['nodeName']}",
    )
    if ready_delay is None:
        event(
            state,
            pod,
            "Warning",
            "Unhealthy",
            'Readiness probe failed: Get "http://10.42.0.9:8080/ready": dial tcp '
            "10.42.0.9:8080: connect: connection refused",
        )


def inject(state: State, pod: dict) -> bool:
    """Istio's webhook: adds istio-proxy (sidecar) or fills it in (gateway template)."""
    istio = state.data.get("istio")
    metadata, spec = pod["metadata"], pod["spec"]
    labels, annotations = metadata["labels"], metadata["annotations"]
    if not istio or "false" in (
        labels.get("sidecar.istio.io/inject"),
        annotations.get("sidecar.istio.io/inject"),
    ):
        return False
    namespace = state.get("Namespace", "", metadata["namespace"]) or {"metadata": {}}
    enabled = namespace["metadata"].get("labels", {}).get("istio-injection") == "enabled"
    gateway = annotations.get("inject.istio.io/templates") == "gateway"
    if not (enabled or gateway or labels.get("sidecar.istio.io/inject") == "true"):
        return False
    image = f"docker.io/istio/proxyv2:{istio['version']}"
    containers = spec.setdefault("containers", [])
    if gateway:
        for container in containers:
            if container.get("name") == PROXY and container.get("image") == "auto":
                container["image"] = image
                container.setdefault(
                    "args", ["proxy", "router", "--domain", "$(POD_NAMESPACE).svc.cluster.local"]
                )
    else:
        app = containers[0]["name"] if containers else PROXY
        annotations.setdefault("kubectl.kubernetes.io/default-container", app)
        annotations.setdefault("kubectl.kubernetes.io/default-logs-container", app)
        spec.setdefault("initContainers", []).append(
            {
                "name": "istio-init",
                "image": image,
                "args": [
                    "istio-iptables",
                    "-p",
                    "15001",
                    "-z",
                    "15006",
                    "-u",
                    "1337",
                    "-m",
                    "REDIRECT",
                    "-i",
                    "*",
                    "-x",
                    "",
                    "-b",
                    "*",
                    "-d",
                    "15090,15021,15020",
                ],
            }
        )
        containers.append(
            {
                "name": PROXY,
                "image": image,
                "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
                "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
                "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}},
                "securityContext": {"runAsGroup": 1337, "runAsUser": 1337},
            }
        )
    annotations["sidecar.istio.io/status"] = json.dumps(
        {
            "initContainers": [] if gateway else ["istio-init"],
            "containers": [PROXY],
            "templates": ["gateway"] if gateway else ["sidecar"],
            "revision": "default",
        }
    )
    labels.setdefault("security.istio.io/tlsMode", "istio")
    labels.setdefault("service.istio.io/canonical-name", labels.get("app", metadata["name"]))
    labels.setdefault("service.istio.io/canonical-revision", "latest")
    return True


def startup_log(stamp: str, pod: dict, container: str, injected: bool, never_ready: bool) -> list[str]:
    if container == "discovery" and never_ready:
        return [
            f'{stamp}\tinfo\tFLAG: --domain="cluster.local"',
            f"{stamp}\terror\tklog\tk8s.io/client-go/informers/factory.go:160: Failed to watch "
            '*v1.ConfigMap: failed to list *v1.ConfigMap: Get "https://10.43.0.1:443/api/v1/'
            'namespaces/istio-system/configmaps?limit=500": dial tcp 10.43.0.1:443: '
            "connect: connection refused",
            f"{stamp}\terror\tfailed to create CA: failed to get CA cert from secret "
            "istio-ca-secret: timed out waiting for the condition",
        ]
    if container == "discovery":
        return [
            f'{stamp}\tinfo\tFLAG: --domain="cluster.local"',
            f"{stamp}\tinfo\tads\tAll caches have been synced up in 1.02s, marking server ready",
        ]
    if container == PROXY and (injected or pod["metadata"]["labels"].get("istio")):
        return [f'{stamp}\tinfo\tFLAG: --concurrency="2"', f"{stamp}\tinfo\tEnvoy proxy is ready"]
    if container == "kiali":
        return [
            f"{stamp} INF Kiali: Version: v1.87.0",
            f"{stamp} INF Server endpoint will start at [:20001/kiali]",
        ]
    return []


def event(state: State, pod: dict, kind: str, reason: str, message: str) -> None:
    metadata = pod["metadata"]
    state.put(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{metadata['name']}.{_hash([metadata['name'], reason], 16)}",
                "namespace": metadata["namespace"],
            },
            "involvedObject": {
                "kind": "Pod",
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata.get("uid", ""),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "count": 1,
            "source": {"component": "default-scheduler" if reason == "Scheduled" else "kubelet"},
            "firstTimestamp": iso(state.now),
            "lastTimestamp": iso(state.now),
        }
    )


# -- status ------------------------------------------------------------------------------------
def pod_ready(state: State, pod: dict) -> bool:
    ready_at = state.meta(pod).get("ready_at")
    return ready_at is not None and state.now >= ready_at


def render_pod(state: State, pod: dict) -> dict:
    view = copy.deepcopy(pod)
    ready = pod_ready(state, pod)
    started = pod["metadata"]["creationTimestamp"]
    flag = "True" if ready else "False"
    ip = pod["metadata"]["annotations"].get("labsim/pod-ip", "")
    view["metadata"]["annotations"].pop("labsim/pod-ip", None)
    node = state.node_info(pod["spec"].get("nodeName", "")) or {}

    def status_of(container: dict) -> dict:
        return {
            "name": container["name"],
            "image": container.get("image", ""),
            "ready": ready,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": started}},
        }

    view["status"] = {
        "phase": "Running" if pod["spec"].get("nodeName") else "Pending",
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": flag},
            {"type": "ContainersReady", "status": flag},
            {"type": "PodScheduled", "status": "True"},
        ],
        "hostIP": node.get("private_ip", ""),
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": started,
        "qosClass": "BestEffort",
        "containerStatuses": [status_of(c) for c in pod["spec"].get("containers", [])],
    }
    init = pod["spec"].get("initContainers", [])
    if init:
        view["status"]["initContainerStatuses"] = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "ready": True,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
            }
            for c in init
        ]
    return view


def render_deployment(state: State, dep: dict) -> dict:
    view = copy.deepcopy(dep)
    pods = owned_pods(state, key_of(dep))
    ready = sum(pod_ready(state, p) for p in pods)
    wanted = int(dep["spec"].get("replicas", 1))
    available = ready >= wanted
    view["status"] = {
        "observedGeneration": dep["metadata"].get("generation", 1),
        "replicas": len(pods),
        "updatedReplicas": len(pods),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(wanted - ready, 0),
        "conditions": [
            {
                "type": "Available",
                "status": "True" if available else "False",
                "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
            },
            {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable" if available else "ReplicaSetUpdated",
            },
        ],
    }
    if not ready:
        for field in ("readyReplicas", "availableReplicas"):
            view["status"].pop(field)
    return view
