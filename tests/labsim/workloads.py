"""Pods, Deployments and Nodes of the simulated cluster: creation, sidecar injection, status."""

from __future__ import annotations

import copy
import json
import math
import random
import zlib
from typing import TYPE_CHECKING

from . import scheduling
from .config import CLUSTER_NODES
from .kinds import iso, key_of

if TYPE_CHECKING:
    from .cluster import State

# what Kubernetes uses for generated names: kubernetes/apimachinery v0.30.5 pkg/util/rand/rand.go
# `alphanums` (pod names `<deployment>-<pod-template-hash>-<5 of these>`; the real hash is fnv32a
# of the template, this one crc32: same shape, not the same value)
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
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
    """Cluster IP and node ports, kept across updates as the API server keeps them. Defaults as in
    kubernetes/kubernetes 1.30 pkg/apis/core/v1/defaults.go `SetDefaults_Service` (protocol TCP,
    targetPort = port, type ClusterIP); k3s's default service CIDR is 10.43.0.0/16 and the node
    port range 30000-32767 (kube-apiserver `--service-node-port-range`)."""
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


# -- images ------------------------------------------------------------------------------------
# Compressed linux/amd64 sizes in MB of the images the lab's pods run, rounded, as the registries'
# tag pages list them (Docker Hub for nicolaka/netshoot, istio/*, prom/prometheus, grafana/grafana,
# jaegertracing/all-in-one; quay.io for kiali; ghcr.io for the config reloader). Approximate: they
# were not re-read from this machine, which has no internet; what matters is their order of size.
IMAGE_SIZES_MB = {  # by repository: nearby tags differ by a few MB
    "docker.io/nicolaka/netshoot": 190,  # v0.13
    "docker.io/istio/proxyv2": 95,  # 1.23.2
    "docker.io/istio/pilot": 75,  # 1.23.2
    "quay.io/kiali/kiali": 75,  # v1.87
    "docker.io/prom/prometheus": 105,  # v2.52.0
    "ghcr.io/prometheus-operator/prometheus-config-reloader": 15,  # v0.73.2
    "docker.io/grafana/grafana": 125,  # 11.0.0
    "docker.io/jaegertracing/all-in-one": 30,  # 1.58
}
UNKNOWN_IMAGE_MB = 50


def normalize_image(image: str) -> str:
    """containerd's reference normalization (distribution/reference ParseNormalizedNamed):
    no registry means docker.io, a single path element means docker.io/library/, no tag :latest."""
    name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    if not digest and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def pull_seconds(state: State, image: str) -> float:
    repository = image.partition("@")[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return IMAGE_SIZES_MB.get(repository, UNKNOWN_IMAGE_MB) / 100 * state.config.delays.image_pull


def images_on(state: State, node: str) -> dict[str, float]:
    """image -> when it is (or will be) in the node's containerd store."""
    return state.data.setdefault("images", {}).setdefault(node, {})


def pull(state: State, node: str, image: str) -> float:
    """Start pulling `image` on `node` unless it is there or on its way; when it will be there.

    A pull takes the image's size over the node's pull rate; pulls of different images run side
    by side (containerd fetches layers concurrently; kubelet's serializeImagePulls is not
    modelled), and a second request for an image being pulled waits for the same pull."""
    image = normalize_image(image)
    store = images_on(state, node)
    # an image a starting pod of Istio's is still fetching comes with whichever pull ends first
    store[image] = min(store.get(image, math.inf), state.now + pull_seconds(state, image))
    return store[image]


def pod_images(spec: dict) -> list[str]:
    return [c["image"] for c in spec.get("initContainers", []) + spec.get("containers", []) if c.get("image")]


def create_deployment(state: State, dep: dict, ready_delay: float | None, pulls: bool = False) -> None:
    """Store the Deployment and start its pods; `ready_delay` None means never Ready.

    `pulls`: its pods wait for their images on their node (kubectl-applied workloads). Without
    it the delay covers everything (Istio's install, k3s's own pods) and the images are on the
    node once the pod is Ready."""
    dep["metadata"].setdefault("generation", 1)
    state.put(dep)
    state.meta(dep)["pod_ready_delay"] = ready_delay
    state.meta(dep)["pulls"] = pulls
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
        create_pod(state, pod, delay, owner, pulls=state.meta(dep).get("pulls", False))


def create_pod(
    state: State, pod: dict, ready_delay: float | None, owner: str | None, pulls: bool = False
) -> None:
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
    ready_at = None if ready_delay is None else state.now + ready_delay
    if ready_at is not None:
        node, images = spec["nodeName"], pod_images(spec)
        if pulls:
            # kubelet starts the containers once every image is on the node, then the pod
            # takes its own start time to become Ready
            store = images_on(state, node)
            missing = [i for i in map(normalize_image, images) if i not in store]
            if node in state.config.faults.pull_rate_limited and any(
                i.startswith("docker.io/") for i in missing
            ):
                ready_at = None  # ImagePullBackOff, for as long as Docker Hub refuses
            else:
                there = max([state.now, *(pull(state, node, image) for image in images)])
                ready_at = there + ready_delay  # type: ignore[operator]
        else:
            store = images_on(state, node)
            for image in map(normalize_image, images):
                store[image] = min(store.get(image, ready_at), ready_at)
    meta.update(owner=owner, ready_at=ready_at)
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
    """Istio's webhook: adds istio-proxy (sidecar) or fills it in (gateway template). Read from
    istio/istio 1.23.2 manifests/charts/istio-control/istio-discovery/files/injection-template.yaml
    (istio-init's istio-iptables args, the proxy's `proxy sidecar --domain ...`, the
    default-container annotations, the tlsMode and canonical-name labels) and gateway-injection
    template; `istio-injection=enabled` on the namespace or `sidecar.istio.io/inject` on the pod."""
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


def _scaled(value: object, total: int, round_up: bool) -> int:
    """An int-or-percent against `total`, as apimachinery's GetScaledValueFromIntOrPercent."""
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(value)  # type: ignore[arg-type]


def max_unavailable(spec: dict, replicas: int) -> int:
    """How many pods a Deployment may lack and still be Available.

    Kubernetes' deployment controller (kubernetes/kubernetes v1.30, pkg/controller/deployment/
    sync.go `calculateStatus`) sets Available when availableReplicas >= replicas - MaxUnavailable;
    `MaxUnavailable` (pkg/controller/deployment/util/deployment_util.go) is 0 unless the strategy
    is RollingUpdate, resolves maxSurge rounding up and maxUnavailable rounding down (defaults 25%
    each), makes it 1 when both come out 0, and caps it at replicas. So a 1-replica Deployment
    with the default strategy needs its pod Ready, but Istio 1.23.2's samples/addons/kiali.yaml
    (`rollingUpdate: {maxSurge: 1, maxUnavailable: 1}`) is Available with no pod Ready at all.
    """
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or replicas == 0:
        return 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = _scaled(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return min(unavailable, replicas)


def render_deployment(state: State, dep: dict) -> dict:
    view = copy.deepcopy(dep)
    pods = owned_pods(state, key_of(dep))
    ready = sum(pod_ready(state, p) for p in pods)
    wanted = int(dep["spec"].get("replicas", 1))
    available = ready >= wanted - max_unavailable(dep["spec"], wanted)
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
