"""The code table and the inventory stay in step with the code and with what `up` applies."""

from __future__ import annotations

import re

import yaml

from lab.analyzer.inventory import load_default
from lab.analyzer.rulebook import RULES

from .builders import REPO

ROW = re.compile(r"^\| (?P<code>[A-Z]{3}\d{4}) \| (?P<severity>error|warning|info) \|", re.MULTILINE)


def test_the_code_table_lists_every_code_once_with_its_severity() -> None:
    text = (REPO / "docs" / "analyzer-codes.md").read_text()
    rows = [(m["code"], m["severity"]) for m in ROW.finditer(text)]
    assert sorted(rows) == sorted((code, rule.severity) for code, rule in RULES.items())


def test_the_inventory_has_the_netshoot_pods_that_up_applies() -> None:
    text = (REPO / "manifests" / "lab" / "netshoot.yaml").read_text()
    applied = {
        (d["metadata"]["namespace"], d["metadata"]["name"], tuple(sorted(d["metadata"]["labels"].items())))
        for d in yaml.safe_load_all(text)
        if d and d["kind"] == "Pod"
    }
    inventory = load_default()
    known = {
        (w.namespace, w.name, tuple(sorted(w.labels.items()))) for w in inventory.workloads if w.kind == "Pod"
    }
    assert known == applied
    assert inventory.namespaces["default"] == {"istio-injection": "enabled"}


# The Services istio-1.23.2/samples/addons/*.yaml create (istio/istio@1.23.2:samples/addons/
# kiali.yaml, prometheus.yaml, grafana.yaml, jaeger.yaml, loki.yaml), as (name, port, targetPort).
ADDON_SERVICES = {
    ("kiali", 20001, None),
    ("kiali", 9090, None),
    ("prometheus", 9090, 9090),
    ("grafana", 3000, 3000),
    ("tracing", 80, 16686),
    ("tracing", 16685, 16685),
    ("zipkin", 9411, 9411),
    ("jaeger-collector", 14268, 14268),
    ("jaeger-collector", 14250, 14250),
    ("jaeger-collector", 9411, 9411),
    ("jaeger-collector", 4317, None),
    ("jaeger-collector", 4318, None),
    ("loki", 3100, "http-metrics"),
    ("loki", 9095, "grpc"),
    ("loki-headless", 3100, "http-metrics"),
    ("loki-memberlist", 7946, "http-memberlist"),
}


def test_the_inventory_has_the_services_the_1_23_2_addons_create() -> None:
    addons = {"kiali", "prometheus", "grafana", "tracing", "zipkin", "jaeger-collector"}
    known = {
        (s.name, p.number, p.target)
        for s in load_default().services
        if s.namespace == "istio-system" and (s.name in addons or s.name.startswith("loki"))
        for p in s.ports
    }
    assert known == ADDON_SERVICES


def test_each_loki_service_selects_the_loki_statefulset() -> None:
    inventory = load_default()
    [loki] = [w for w in inventory.workloads if w.name == "loki"]
    for service in (s for s in inventory.services if s.name.startswith("loki")):
        assert all(loki.labels.get(k) == v for k, v in (service.selector or {}).items()), service.name
