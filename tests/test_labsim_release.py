"""The simulator's Istio release holds what the real istio-1.23.2/samples/addons/ holds.

Facts read from istio/istio at tag 1.23.2 (`git ls-tree 1.23.2 samples/addons`, and each file's
objects), written out here rather than taken from the simulator's copy."""

from __future__ import annotations

import gzip
import io
import tarfile

import yaml

from tests.labsim import release

V = "1.23.2"
FILES = {
    "README.md",
    "grafana.yaml",
    "jaeger.yaml",
    "kiali.yaml",
    "loki.yaml",
    "prometheus.yaml",
    "extras/prometheus-operator.yaml",
    "extras/skywalking.yaml",
    "extras/zipkin.yaml",
}
# (file, kind, name) -> ports of a Service as (name, port, targetPort)
SERVICES = {
    ("grafana.yaml", "grafana"): {("service", 3000, 3000)},
    ("jaeger.yaml", "tracing"): {("http-query", 80, 16686), ("grpc-query", 16685, 16685)},
    ("jaeger.yaml", "zipkin"): {("http-query", 9411, 9411)},
    ("jaeger.yaml", "jaeger-collector"): {
        ("jaeger-collector-http", 14268, 14268),
        ("jaeger-collector-grpc", 14250, 14250),
        ("http-zipkin", 9411, 9411),
        ("grpc-otel", 4317, None),
        ("http-otel", 4318, None),
    },
    ("kiali.yaml", "kiali"): {("http", 20001, None), ("http-metrics", 9090, None)},
    ("loki.yaml", "loki"): {("http-metrics", 3100, "http-metrics"), ("grpc", 9095, "grpc")},
    ("loki.yaml", "loki-headless"): {("http-metrics", 3100, "http-metrics")},
    ("loki.yaml", "loki-memberlist"): {("tcp", 7946, "http-memberlist")},
    ("prometheus.yaml", "prometheus"): {("http", 9090, 9090)},
}
# (file, kind, name) -> (replicas, strategy) of the workloads
WORKLOADS = {
    ("grafana.yaml", "Deployment", "grafana"): (1, {"type": "RollingUpdate"}),
    ("jaeger.yaml", "Deployment", "jaeger"): (None, None),
    ("kiali.yaml", "Deployment", "kiali"): (
        1,
        {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}, "type": "RollingUpdate"},
    ),
    ("loki.yaml", "StatefulSet", "loki"): (1, {"rollingUpdate": {"partition": 0}}),
    ("prometheus.yaml", "Deployment", "prometheus"): (1, {"type": "Recreate", "rollingUpdate": None}),
}
IMAGES = {
    "grafana": ["docker.io/grafana/grafana:11.0.0"],
    "jaeger": ["docker.io/jaegertracing/all-in-one:1.58"],
    "kiali": ["quay.io/kiali/kiali:v1.87"],
    "loki": ["docker.io/grafana/loki:3.0.0"],
    "prometheus": [
        "ghcr.io/prometheus-operator/prometheus-config-reloader:v0.73.2",
        "prom/prometheus:v2.52.0",
    ],
}


def addons() -> dict[str, bytes]:
    prefix = f"istio-{V}/samples/addons/"
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(release.tarball(V)))) as archive:
        return {
            member.name.removeprefix(prefix): archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile() and member.name.startswith(prefix)
        }


def test_the_addons_folder_holds_the_release_files() -> None:
    assert set(addons()) == FILES


def test_the_addons_have_the_release_services_workloads_and_images() -> None:
    files = addons()
    docs = {
        name: [d for d in yaml.safe_load_all(data) if d]
        for name, data in files.items()
        if name.endswith(".yaml") and "/" not in name
    }
    services = {
        (name, d["metadata"]["name"]): {
            (p.get("name"), p["port"], p.get("targetPort")) for p in d["spec"]["ports"]
        }
        for name, found in docs.items()
        for d in found
        if d["kind"] == "Service"
    }
    assert services == SERVICES
    workloads = {
        (name, d["kind"], d["metadata"]["name"]): d
        for name, found in docs.items()
        for d in found
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
    }
    assert set(workloads) == set(WORKLOADS)
    for where, (replicas, strategy) in WORKLOADS.items():
        spec = workloads[where]["spec"]
        assert (spec.get("replicas"), spec.get("strategy") or spec.get("updateStrategy")) == (
            replicas,
            strategy,
        )
        images = [c["image"] for c in spec["template"]["spec"]["containers"]]
        assert images == IMAGES[where[2]], where
    loki = workloads[("loki.yaml", "StatefulSet", "loki")]["spec"]
    assert loki["serviceName"] == "loki-headless"
    assert [t["metadata"]["name"] for t in loki["volumeClaimTemplates"]] == ["storage"]
