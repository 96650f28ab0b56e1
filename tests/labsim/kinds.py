"""The resource types the simulated API server serves, and how kubectl names them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    group: str  # "" for the core group
    versions: tuple[str, ...]
    namespaced: bool = True
    short: tuple[str, ...] = ()
    istio: bool = False  # served only once istioctl has installed the CRDs

    @property
    def qualified(self) -> str:
        """How kubectl prints it: `deployment.apps`, `service`."""
        return f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()

    @property
    def resource(self) -> str:
        """The API resource: `deployments.apps`, `services`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_versions(self) -> tuple[str, ...]:
        return tuple(f"{self.group}/{v}" if self.group else v for v in self.versions)

    def names(self) -> set[str]:
        bare = {self.plural, self.kind.lower(), *self.short}
        if not self.group:
            return bare
        return bare | {f"{name}.{self.group}" for name in (self.plural, self.kind.lower())}


RBAC = "rbac.authorization.k8s.io"
ADMISSION = "admissionregistration.k8s.io"
NET = "networking.istio.io"
SEC = "security.istio.io"
V1_BETA_ALPHA = ("v1", "v1beta1", "v1alpha3")

# Built-in kinds: plural, group, version and short names as `kubectl api-resources` lists them for
# Kubernetes 1.30 (kubernetes/kubernetes pkg/registry/*/rest storage `ShortNames`)
KINDS = [
    Kind("Namespace", "namespaces", "", ("v1",), False, ("ns",)),
    Kind("Node", "nodes", "", ("v1",), False, ("no",)),
    Kind("Pod", "pods", "", ("v1",), short=("po",)),
    Kind("Service", "services", "", ("v1",), short=("svc",)),
    Kind("Endpoints", "endpoints", "", ("v1",), short=("ep",)),
    Kind("ConfigMap", "configmaps", "", ("v1",), short=("cm",)),
    Kind("Secret", "secrets", "", ("v1",)),
    Kind("ServiceAccount", "serviceaccounts", "", ("v1",), short=("sa",)),
    Kind("Event", "events", "", ("v1",), short=("ev",)),
    Kind("PersistentVolumeClaim", "persistentvolumeclaims", "", ("v1",), short=("pvc",)),
    Kind("Deployment", "deployments", "apps", ("v1",), short=("deploy",)),
    Kind("DaemonSet", "daemonsets", "apps", ("v1",), short=("ds",)),
    Kind("StatefulSet", "statefulsets", "apps", ("v1",), short=("sts",)),
    Kind("ReplicaSet", "replicasets", "apps", ("v1",), short=("rs",)),
    Kind("Job", "jobs", "batch", ("v1",)),
    Kind("Role", "roles", RBAC, ("v1",)),
    Kind("RoleBinding", "rolebindings", RBAC, ("v1",)),
    Kind("ClusterRole", "clusterroles", RBAC, ("v1",), False),
    Kind("ClusterRoleBinding", "clusterrolebindings", RBAC, ("v1",), False),
    Kind("PodDisruptionBudget", "poddisruptionbudgets", "policy", ("v1",), short=("pdb",)),
    Kind("HorizontalPodAutoscaler", "horizontalpodautoscalers", "autoscaling", ("v2", "v1"), short=("hpa",)),
    Kind("Ingress", "ingresses", "networking.k8s.io", ("v1",), short=("ing",)),
    Kind("NetworkPolicy", "networkpolicies", "networking.k8s.io", ("v1",), short=("netpol",)),
    Kind("StorageClass", "storageclasses", "storage.k8s.io", ("v1",), False, ("sc",)),
    Kind(
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "apiextensions.k8s.io",
        ("v1",),
        False,
        ("crd", "crds"),
    ),
    Kind("MutatingWebhookConfiguration", "mutatingwebhookconfigurations", ADMISSION, ("v1",), False),
    Kind("ValidatingWebhookConfiguration", "validatingwebhookconfigurations", ADMISSION, ("v1",), False),
    # Istio 1.23.2: served versions and short names as in istio/istio 1.23.2
    # manifests/charts/base/crds/crd-all.gen.yaml
    Kind("DestinationRule", "destinationrules", NET, V1_BETA_ALPHA, short=("dr",), istio=True),
    Kind("EnvoyFilter", "envoyfilters", NET, ("v1alpha3",), istio=True),
    Kind("Gateway", "gateways", NET, V1_BETA_ALPHA, short=("gw",), istio=True),
    Kind("ProxyConfig", "proxyconfigs", NET, ("v1beta1",), istio=True),
    Kind("ServiceEntry", "serviceentries", NET, V1_BETA_ALPHA, short=("se",), istio=True),
    Kind("Sidecar", "sidecars", NET, V1_BETA_ALPHA, istio=True),
    Kind("VirtualService", "virtualservices", NET, V1_BETA_ALPHA, short=("vs",), istio=True),
    Kind("WorkloadEntry", "workloadentries", NET, V1_BETA_ALPHA, short=("we",), istio=True),
    Kind("WorkloadGroup", "workloadgroups", NET, V1_BETA_ALPHA, short=("wg",), istio=True),
    Kind("AuthorizationPolicy", "authorizationpolicies", SEC, ("v1", "v1beta1"), short=("ap",), istio=True),
    Kind("PeerAuthentication", "peerauthentications", SEC, ("v1", "v1beta1"), short=("pa",), istio=True),
    Kind(
        "RequestAuthentication", "requestauthentications", SEC, ("v1", "v1beta1"), short=("ra",), istio=True
    ),
    Kind(
        "Telemetry", "telemetries", "telemetry.istio.io", ("v1", "v1alpha1"), short=("telemetry",), istio=True
    ),
    Kind("WasmPlugin", "wasmplugins", "extensions.istio.io", ("v1alpha1",), istio=True),
]
BY_KIND = {k.kind: k for k in KINDS}
ISTIO_KINDS = [k for k in KINDS if k.istio]


def by_name(name: str) -> Kind | None:
    """`pods`, `po`, `deployment.apps`, `gateways.networking.istio.io`, `EnvoyFilter` -> Kind."""
    lowered = name.lower()
    for kind in KINDS:
        if lowered in kind.names():
            return kind
    return None


def key(kind: str, namespace: str, name: str) -> str:
    """How the simulated API server files an object: `Kind/namespace/name`."""
    return f"{kind}/{namespace}/{name}"


def key_of(obj: dict) -> str:
    kind = BY_KIND.get(obj["kind"])
    namespace = obj["metadata"].get("namespace", "") if kind is None or kind.namespaced else ""
    return key(obj["kind"], namespace, obj["metadata"]["name"])


def iso(ts: float, fraction: bool = False) -> str:
    """RFC 3339 in UTC, as Kubernetes (seconds) and Envoy (milliseconds) print it."""
    moment = datetime.fromtimestamp(ts, timezone.utc)
    if fraction:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
