"""Every scenario manifest validates strictly: Istio kinds against Istio 1.23.2's CRD schemas,
core kinds against Kubernetes 1.30 (kubernetes-validate, strict)."""

from __future__ import annotations

from pathlib import Path
from string import Template

import pytest
import yaml

from .helpers import REPO, SCENARIOS, scenario_files
from .strict_schemas import Invalid, validate

MANIFESTS_DIR = REPO / "manifests"
# Every manifest file in the repository: the scenarios' and the lab's own (manifests/lab).
MANIFESTS = sorted(MANIFESTS_DIR.glob("*/*.yaml"))
# What `up` puts in place of ${NETSHOOT_IMAGE} (pinned, as in lab/config.py).
RENDERED = {"NETSHOOT_IMAGE": "nicolaka/netshoot:v0.13"}


def documents(path: Path) -> list[dict]:
    text = Template(path.read_text()).substitute(RENDERED)  # raises on any other ${...}
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_manifest_validates_strictly(path: Path) -> None:
    judged = [validate(doc, f"{path.name}[{i}] {doc.get('kind')}") for i, doc in enumerate(documents(path))]
    assert judged, f"{path} has no documents"


def test_the_lab_manifests_are_validated_too() -> None:
    netshoot = documents(MANIFESTS_DIR / "lab" / "netshoot.yaml")
    assert [d["spec"]["containers"][0]["image"] for d in netshoot] == ["nicolaka/netshoot:v0.13"] * 2
    assert MANIFESTS_DIR / "lab" / "netshoot.yaml" in MANIFESTS


def test_every_scenario_folder_holds_exactly_the_files_its_scenario_applies() -> None:
    folders = {p.parent.name for p in MANIFESTS}
    assert folders == {*SCENARIOS, "lab"}
    for name, scenario in scenario_files().items():
        lists = [step["apply"] for step in scenario["steps"] if "apply" in step]
        applied = [f for files in lists for f in ([files] if isinstance(files, str) else files)]
        on_disk = sorted(p.name for p in MANIFESTS if p.parent.name == name)
        assert sorted(set(applied)) == on_disk, name


def test_the_manifests_cover_both_validators() -> None:
    kinds = {validate(doc, str(path)) for path in MANIFESTS for doc in documents(path)}
    assert kinds == {"istio", "core"}


VIRTUAL_SERVICE = {
    "apiVersion": "networking.istio.io/v1beta1",
    "kind": "VirtualService",
    "metadata": {"name": "vs", "namespace": "default"},
    "spec": {
        "hosts": ["*.wikipedia.org"],
        "tls": [
            {
                "match": [{"port": 443, "sniHosts": ["*.wikipedia.org"]}],
                "route": [{"destination": {"host": "gw"}}],
            }
        ],
    },
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["spec"]["tls"][0].update(matches=[]),
            "spec.tls.0: Additional properties are not allowed ('matches'",
        ),
        (
            lambda d: d["spec"]["tls"][0]["match"][0].update(port="443"),
            "spec.tls.0.match.0.port: '443' is not of type 'integer'",
        ),
        (
            lambda d: d["spec"].update(hosts="*.wikipedia.org"),
            "spec.hosts: '*.wikipedia.org' is not of type 'array'",
        ),
        (
            lambda d: d.update(apiVersion="networking.istio.io/v2"),
            "networking.istio.io/v2 VirtualService is not served",
        ),
        (lambda d: d["metadata"].update(name="Bad_Name"), "metadata.name: 'Bad_Name' is not a DNS-1123 name"),
    ],
    ids=["unknown field", "wrong type", "not a list", "unserved version", "bad name"],
)
def test_the_istio_validation_rejects_what_the_api_server_would(change, message: str) -> None:
    doc = yaml.safe_load(yaml.safe_dump(VIRTUAL_SERVICE))
    assert validate(doc, "vs") == "istio"
    change(doc)
    with pytest.raises(Invalid, match=None) as caught:
        validate(doc, "vs")
    assert message in str(caught.value)


def test_an_envoyfilter_payload_is_free_form_but_its_envelope_is_not() -> None:
    envoy_filter = documents(MANIFESTS_DIR / "egress-sni" / "envoyfilter.yaml")[0]
    envoy_filter["spec"]["configPatches"][0]["patch"]["value"]["anything"] = {"goes": True}
    assert validate(envoy_filter, "ef") == "istio", "patch.value preserves unknown fields"
    envoy_filter["spec"]["configPatches"][0]["patch"]["operation"] = "APPEND"
    with pytest.raises(Invalid, match="'APPEND' is not one of"):
        validate(envoy_filter, "ef")


def test_core_kinds_are_validated_strictly_against_kubernetes_1_30() -> None:
    service = documents(MANIFESTS_DIR / "egress-sni" / "gateway.yaml")[3]
    assert service["kind"] == "Service" and validate(service, "svc") == "core"
    service["spec"]["portz"] = []
    with pytest.raises(
        Invalid, match=r"spec: Additional properties are not allowed \('portz' was unexpected\)"
    ):
        validate(service, "svc")
