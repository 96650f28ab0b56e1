"""What `istioctl install` puts in the cluster: the objects of Istio's profiles.

Read from istio/istio at tag 1.23.2: the profiles in `manifests/charts/base/files/profile-*.yaml`
(demo: access log to /dev/stdout, the extension providers, the ingress gateway's five ports), the
gateway charts `manifests/charts/gateways/istio-{ingress,egress}/` (`values.yaml` ports and service
types, `templates/deployment.yaml` container args, ports and service account), the CRDs'
served versions in `manifests/charts/base/crds/crd-all.gen.yaml`. The objects are applied with
server-side apply (`operator/pkg/helmreconciler/apply.go`, `client.Apply`, field owner
`istio-operator`), so they carry no kubectl last-applied-configuration annotation.
"""

from __future__ import annotations

import copy

import yaml

from . import workloads
from .cluster import State
from .kinds import ISTIO_KINDS

NS = "istio-system"
DEMO_MESH = {
    "accessLogFile": "/dev/stdout",
    "defaultConfig": {"discoveryAddress": "istiod.istio-system.svc:15012"},
    "defaultProviders": {"metrics": ["prometheus"]},
    "enablePrometheusMerge": True,
    "extensionProviders": [
        {
            "name": "otel",
            "envoyOtelAls": {
                "port": 4317,
                "service": "opentelemetry-collector.observability.svc.cluster.local",
            },
        },
        {
            "name": "skywalking",
            "skywalking": {"port": 11800, "service": "tracing.istio-system.svc.cluster.local"},
        },
        {
            "name": "otel-tracing",
            "opentelemetry": {
                "port": 4317,
                "service": "opentelemetry-collector.observability.svc.cluster.local",
            },
        },
    ],
    "rootNamespace": "istio-system",
    "trustDomain": "cluster.local",
}
# profile -> gateways it installs (istiod always); manifests/profiles/*.yaml at 1.23.2
PROFILES = {"demo": ("ingress", "egress"), "default": ("ingress",), "minimal": ()}
GATEWAY_PORTS = {
    "ingress": [
        ("status-port", 15021, 15021),
        ("http2", 80, 8080),
        ("https", 443, 8443),
        ("tcp", 31400, 31400),
        ("tls", 15443, 15443),
    ],
    "egress": [("http2", 80, 8080), ("https", 443, 8443)],
}


def mesh_config(profile: str, overrides: dict) -> dict:
    mesh = (
        dict(DEMO_MESH)
        if profile == "demo"
        else {key: value for key, value in DEMO_MESH.items() if key != "accessLogFile"}
    )
    for path, value in overrides.items():
        node = mesh
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return mesh


def _crd(kind) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.resource, "labels": {"app": "istio-pilot", "chart": "istio"}},
        "spec": {
            "group": kind.group,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": list(kind.short),
            },
            "versions": [{"name": v, "served": True, "storage": i == 0} for i, v in enumerate(kind.versions)],
        },
    }


def _istiod(version: str) -> dict:
    labels = {
        "app": "istiod",
        "istio": "pilot",
        "istio.io/rev": "default",
        "install.operator.istio.io/owning-resource": "unknown",
        "operator.istio.io/component": "Pilot",
    }
    dep = workloads.deployment(
        NS,
        "istiod",
        labels,
        "discovery",
        f"docker.io/istio/pilot:{version}",
        pod_labels={"sidecar.istio.io/inject": "false"},
        annotations={"prometheus.io/port": "15014", "prometheus.io/scrape": "true"},
    )
    dep["spec"]["selector"] = {"matchLabels": {"istio": "pilot"}}
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"containerPort": p, "protocol": "TCP"} for p in (8080, 15010, 15017)]
    container["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}}
    dep["spec"]["template"]["spec"]["serviceAccountName"] = "istiod"
    return dep


def _gateway(which: str, version: str) -> dict:
    name = f"istio-{which}gateway"
    component = "IngressGateways" if which == "ingress" else "EgressGateways"
    labels = {
        "app": name,
        "istio": f"{which}gateway",
        "istio.io/rev": "default",
        "install.operator.istio.io/owning-resource": "unknown",
        "operator.istio.io/component": component,
    }
    dep = workloads.deployment(
        NS,
        name,
        labels,
        "istio-proxy",
        f"docker.io/istio/proxyv2:{version}",
        pod_labels={
            "sidecar.istio.io/inject": "false",
            "chart": "gateways",
            "heritage": "Tiller",
            "release": "istio",
            "service.istio.io/canonical-name": name,
            "service.istio.io/canonical-revision": "latest",
        },
        annotations={
            "prometheus.io/path": "/stats/prometheus",
            "prometheus.io/port": "15020",
            "prometheus.io/scrape": "true",
        },
    )
    dep["spec"]["selector"] = {"matchLabels": {"app": name, "istio": f"{which}gateway"}}
    container = dep["spec"]["template"]["spec"]["containers"][0]
    container["args"] = [
        "proxy",
        "router",
        "--domain",
        "$(POD_NAMESPACE).svc.cluster.local",
        "--proxyLogLevel=warning",
        "--proxyComponentLogLevel=misc:error",
        "--log_output_level=default:info",
    ]
    container["ports"] = [{"containerPort": t, "protocol": "TCP"} for _, _, t in GATEWAY_PORTS[which]] + [
        {"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}
    ]
    container["readinessProbe"] = {"httpGet": {"path": "/healthz/ready", "port": 15021}}
    dep["spec"]["template"]["spec"]["serviceAccountName"] = f"{name}-service-account"
    return dep


def manifest(version: str, profile: str, mesh_overrides: dict) -> list[tuple[str, dict]]:
    """What the profile renders, as `istioctl manifest generate` prints it: (component, object) in
    apply order; the component is the Deployment an install waits for, or "" for shared objects."""
    objects: list[tuple[str, dict]] = [("", workloads.namespace_object(NS))]
    objects += [("", _crd(kind)) for kind in ISTIO_KINDS]
    mesh = mesh_config(profile, mesh_overrides)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "istio",
            "namespace": NS,
            "labels": {"istio.io/rev": "default", "operator.istio.io/component": "Pilot"},
        },
        "data": {"mesh": yaml.safe_dump(mesh, sort_keys=True), "meshNetworks": "networks: {}\n"},
    }
    objects.append(("", configmap))
    components = [
        (
            "istiod",
            _istiod(version),
            workloads.service(
                NS,
                "istiod",
                None,
                [
                    ("grpc-xds", 15010, 15010),
                    ("https-dns", 15012, 15012),
                    ("https-webhook", 443, 15017),
                    ("http-monitoring", 15014, 15014),
                ],
                {"app": "istiod", "istio": "pilot"},
                {"app": "istiod", "istio": "pilot"},
            ),
        )
    ]
    for which in PROFILES[profile]:
        dep = _gateway(which, version)
        name = dep["metadata"]["name"]
        components.append(
            (
                name,
                dep,
                workloads.service(
                    NS,
                    name,
                    None,
                    GATEWAY_PORTS[which],
                    dep["spec"]["selector"]["matchLabels"],
                    dep["metadata"]["labels"],
                    "LoadBalancer" if which == "ingress" else "ClusterIP",
                ),
            )
        )
    for name, dep, svc in components:
        account = dep["spec"]["template"]["spec"]["serviceAccountName"]
        objects.append(
            (name, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": NS}})
        )
        objects += [(name, dep), (name, svc)]
    return objects


def install(state: State, version: str, profile: str, mesh_overrides: dict) -> list[str]:
    """Apply the rendered objects; returns the Deployments the install waits for.

    istio/istio 1.23.2 operator/pkg/helmreconciler/apply.go (`ApplyObject` -> `serverSideApply`):
    every rendered object is applied with server-side apply and ForceOwnership, so a re-run puts the
    fields the install sets back (a Service's ports, a Deployment's template) and keeps fields only
    others set. Approximated here: maps merge key by key, lists are replaced whole.
    """
    from . import api  # late: api imports workloads, as this module does

    state.data["istio"] = {"version": version, "profile": profile}
    never = state.config.faults.istiod_never_ready
    # the gateways need istiod's configuration to become ready, so they fail with it
    delay = None if never else state.config.delays.istio_ready
    waited: list[str] = []
    for component, obj in manifest(version, profile, mesh_overrides):
        if component and component not in waited:
            waited.append(component)
        metadata = obj["metadata"]
        old = state.get(obj["kind"], metadata.get("namespace", ""), metadata["name"])
        if old is None:
            if obj["kind"] == "Deployment":
                workloads.create_deployment(state, obj, delay)
            elif obj["kind"] == "Service":
                workloads.allocate_service(state, obj, None)
                state.put(obj)
            else:
                state.put(obj)
            continue
        current = copy.deepcopy(old)
        current.pop("status", None)
        merged = _force_apply(current, obj)
        if merged != current:
            api.replace(state, old, merged)
    return waited


def _force_apply(live: object, applied: object) -> object:
    if isinstance(live, dict) and isinstance(applied, dict):
        merged = dict(live)
        for key, value in applied.items():
            merged[key] = _force_apply(live.get(key), value)
        return merged
    return copy.deepcopy(applied)


def uninstall(state: State) -> None:
    for obj in state.objects(namespace=NS):
        if obj["kind"] in ("Deployment", "Service", "ConfigMap", "ServiceAccount"):
            state.remove(obj)
    for kind in ISTIO_KINDS:
        for obj in state.objects(kind.kind):
            state.remove(obj)
        crd = state.get("CustomResourceDefinition", "", kind.resource)
        if crd:
            state.remove(crd)
    state.data["istio"] = None
