"""`--live`: the inventory from the cluster's pods and Services, and istioctl's messages merged."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.analyzer import cli
from lab.analyzer.findings import Finding
from lab.analyzer.inventory import load_default
from lab.analyzer.live import SAME_AS, istioctl_findings, live_inventory, merge
from lab.errors import LabError

from .builders import FIXTURES


@pytest.fixture
def routing(tmp_path: Path) -> str:
    """The study notes' DestinationRule and VirtualService, without their re-declared gateway."""
    docs = yaml.safe_load_all((FIXTURES / "study-notes-broken" / "egress.yaml").read_text())
    kept = [d for d in docs if d["kind"] in ("DestinationRule", "VirtualService")]
    (tmp_path / "routing.yaml").write_text(yaml.safe_dump_all(kept))
    return str(tmp_path)


def pod(
    namespace: str,
    name: str,
    labels: dict[str, str],
    proxy_args: list[str] | None = None,
    owner: tuple[str, str] | None = None,
) -> dict[str, Any]:
    containers = [{"name": "app", "image": "app"}]
    if proxy_args:
        containers.append({"name": "istio-proxy", "image": "proxyv2", "args": proxy_args})
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1]}]
    return {"kind": "Pod", "metadata": meta, "spec": {"containers": containers}}


def service(namespace: str, name: str, selector: dict[str, str], ports: list[dict[str, Any]]) -> dict:
    return {
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": selector, "ports": ports},
    }


GATEWAY_LABELS = {"app": "istio-egressgateway", "istio": "egressgateway", "version": "v1"}
ITEMS = [
    pod(
        "istio-system",
        "istio-egressgateway-7f9c8d6b5-abcde",
        {**GATEWAY_LABELS, "pod-template-hash": "7f9c8d6b5"},
        ["proxy", "router", "--domain", "istio-system.svc.cluster.local"],
        ("ReplicaSet", "istio-egressgateway-7f9c8d6b5"),
    ),
    pod(
        "default", "pod1", {"app": "netshoot"}, ["proxy", "sidecar", "--domain", "default.svc.cluster.local"]
    ),
    service(
        "istio-system",
        "istio-egressgateway",
        {"istio": "egressgateway"},
        [
            {"name": "http2", "port": 80, "targetPort": 8080},
            {"name": "https", "port": 443, "targetPort": 8443},
        ],
    ),
]
MESSAGES = [
    {  # IST0101 ReferencedResourceNotFound, as virtualservice/destinationrules.go words it
        "code": "IST0101",
        "level": "Error",
        "origin": "VirtualService istio-system/direct-wikipedia-through-egress-gateway",
        "message": 'Referenced host+subset in destinationrule not found: "istio-egressgateway.istio-system'
        '.svc.cluster.local+wildcard"',
        "documentationUrl": "https://istio.io/v1.23/docs/reference/config/analysis/ist0101/",
    },
    {
        "code": "IST0102",
        "level": "Info",
        "origin": "Namespace istio-egress",
        "message": "The namespace is not enabled for Istio injection.",
    },
    {
        "code": "IST0101",
        "level": "Error",
        "origin": "VirtualService direct.istio-system",
        "message": "Referenced host not found",
    },
]


@dataclass
class FakeCluster:
    """Stands in for lab.cluster.Cluster: the two commands `--live` runs, recorded."""

    items: list[dict[str, Any]]
    stdout: str
    stderr: str = ""
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def kubectl_json(self, *args: str) -> dict[str, Any]:
        self.calls.append(("kubectl", *args))
        return {"apiVersion": "v1", "kind": "List", "items": self.items}

    def istioctl(self, *args: str, check: bool = True) -> Any:
        self.calls.append(("istioctl", *args, f"check={check}"))
        return type("Result", (), {"exit_code": 79, "stdout": self.stdout, "stderr": self.stderr})()


def test_the_live_inventory_is_the_clusters_pods_and_services() -> None:
    cluster = FakeCluster(ITEMS, "[]")
    inventory = live_inventory(cluster, load_default())
    assert cluster.calls == [("kubectl", "get", "pods,services", "-A")]
    assert {(w.kind, w.namespace, w.name, w.proxy) for w in inventory.workloads} == {
        ("Deployment", "istio-system", "istio-egressgateway", "gateway"),
        ("Pod", "default", "pod1", "sidecar"),
    }
    assert [(s.name, [p.number for p in s.ports]) for s in inventory.services] == [
        ("istio-egressgateway", [80, 443])
    ]
    assert inventory.installed("Deployment", "istio-system", "istio-egressgateway")
    assert not inventory.installed("Deployment", "istio-system", "istiod")


def test_analyze_live_checks_against_the_cluster_and_merges_istioctl(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], routing: str
) -> None:
    cluster = FakeCluster(ITEMS, json.dumps(MESSAGES))
    monkeypatch.setattr(cli, "_cluster", lambda settings: cluster)
    assert cli.run_analyze([routing], None, "json", live=True, settings=object()) == 1
    found = {(f["code"], f["kind"], f["namespace"], f["name"]) for f in json.loads(capsys.readouterr().out)}
    assert ("istioctl", "analyze", "-A", "-o", "json", "check=False") in cluster.calls
    # This cluster's gateway pods do carry version=v1, so the subset selects them: no KIA0203.
    assert ("KIA0203", "DestinationRule", "istio-system", "egressgateway-for-wikipedia") not in found
    # istioctl's IST0101 about this VirtualService repeats none of ours (LAB0101 is another mistake).
    assert ("IST0101", "VirtualService", "istio-system", "direct-wikipedia-through-egress-gateway") in found
    assert ("IST0102", "Namespace", "", "istio-egress") in found
    assert ("IST0101", "VirtualService", "istio-system", "direct") in found
    assert ("LAB0101", "VirtualService", "istio-system", "direct-wikipedia-through-egress-gateway") in found


def test_istioctl_messages_that_repeat_ours_are_left_out() -> None:
    def finding(code: str, name: str) -> Finding:
        return Finding(code, "error", "VirtualService", "default", name, "m", "h")

    ours = [finding("KIA1101", "a")]
    istio = [finding("IST0101", "a"), finding("IST0101", "b"), finding("IST0173", "a")]
    merged = merge(ours, istio)
    # IST0101 on `a` says what KIA1101 says; on `b` it is istioctl's own. IST0173 does not exist in
    # 1.23.2 (messages.yaml ends at IST0170): nothing maps to it, so it is never taken for ours.
    assert [(f.code, f.name) for f in merged] == [("KIA1101", "a"), ("IST0101", "b"), ("IST0173", "a")]


def test_only_codes_that_istioctl_1_23_2_emits_are_mapped() -> None:
    assert set(SAME_AS) == {"IST0101"}
    assert all(int(code[3:]) <= 170 for code in SAME_AS)


def test_istioctl_findings_keep_severity_and_documentation() -> None:
    [finding, *_] = istioctl_findings(FakeCluster([], json.dumps(MESSAGES)))
    assert (finding.code, finding.severity) == ("IST0101", "error")
    assert finding.hint == "see https://istio.io/v1.23/docs/reference/config/analysis/ist0101/"


def test_istioctl_output_that_is_not_json_is_one_line() -> None:
    cluster = FakeCluster([], "Error: failed to get cluster", stderr="dial tcp: connection refused\n")
    with pytest.raises(LabError, match="istioctl analyze failed: dial tcp: connection refused"):
        istioctl_findings(cluster)


def test_istioctl_json_that_is_not_a_list_is_one_line() -> None:
    with pytest.raises(LabError, match="not a list"):
        istioctl_findings(FakeCluster([], '{"code": "IST0101"}'))
