"""The simulated `kubectl apply` on objects `istioctl install` created server-side: a strategic merge
that removes nothing (kubectl 1.30 `pkg/cmd/apply`, apimachinery v0.30.5 `strategicpatch`), the
last-applied annotation recorded as kubectl records it, and the scenario's exact restore undoing it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from lab.scenario.cluster_state import merge_patch_between, strip_server_fields
from tests.labsim import strategic
from tests.test_labsim import booted, kubectl, mesh_ready, tool  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
NOTES = (REPO / "manifests" / "egress-sni-broken" / "egressgateway.yaml").read_text()
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
WHERE = ("-n", "istio-system")


def gateway(sim) -> dict:
    got = kubectl(sim, "get", "service,deployment", "istio-egressgateway", *WHERE, "-o", "json")
    assert got.returncode == 0, got.stderr
    return {item["kind"]: item for item in json.loads(got.stdout)["items"]}


def ports(service: dict) -> set[tuple]:
    return {(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]}


def proxy(deployment: dict) -> dict:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_the_study_notes_apply_merges_into_the_gateway_istioctl_installed(booted) -> None:  # noqa: F811
    sim, _ = booted
    mesh_ready(sim, egress_gateway=False)
    before = gateway(sim)
    assert LAST_APPLIED not in (before["Service"]["metadata"].get("annotations") or {})

    applied = kubectl(sim, "apply", "-f", "-", stdin=NOTES)

    assert applied.returncode == 0, applied.stderr
    assert (
        applied.stdout
        == "service/istio-egressgateway configured\ndeployment.apps/istio-egressgateway configured\n"
    )
    assert [line.split(" is missing")[0] for line in applied.stderr.splitlines()] == [
        "Warning: resource services/istio-egressgateway",
        "Warning: resource deployments.apps/istio-egressgateway",
    ]
    after = gateway(sim)
    # The Service keeps both ports and their target ports: nothing is removed without an original.
    assert ports(after["Service"]) == {("http2", 80, 8080), ("https", 443, 8443)}
    assert after["Service"]["spec"]["selector"] == before["Service"]["spec"]["selector"]
    # The Deployment: `args` (no merge key) replaced, containerPort 443 merged in by containerPort.
    was, now = proxy(before["Deployment"]), proxy(after["Deployment"])
    assert was["args"][:2] == ["proxy", "router"] and len(was["args"]) > 2
    assert now["args"] == ["proxy", "router"]
    assert [p["containerPort"] for p in now["ports"]] == [443] + [p["containerPort"] for p in was["ports"]]
    assert {k: v for k, v in now.items() if k not in ("args", "ports")} == {
        k: v for k, v in was.items() if k not in ("args", "ports")
    }
    template = after["Deployment"]["spec"]["template"]
    assert template["metadata"] == before["Deployment"]["spec"]["template"]["metadata"]
    assert template["spec"]["serviceAccountName"] == "istio-egressgateway-service-account"
    # kubectl records what it applied: the file's object, `annotations: {}` and its namespace included.
    for doc in yaml.safe_load_all(NOTES):
        recorded = json.loads(after[doc["kind"]]["metadata"]["annotations"][LAST_APPLIED])
        assert recorded == {**doc, "metadata": {**doc["metadata"], "annotations": {}}}

    again = kubectl(sim, "apply", "-f", "-", stdin=NOTES)
    assert again.returncode == 0 and again.stderr == "", "the annotation is there now"

    # The scenario's exact restore: a JSON merge patch from what is there to the snapshot.
    for kind, snapshot in before.items():
        current = strip_server_fields(gateway(sim)[kind])
        patch = merge_patch_between(current, strip_server_fields(snapshot))
        annotations = patch["metadata"]["annotations"]
        assert annotations is None or annotations[LAST_APPLIED] is None, "the restore drops kubectl's record"
        restored = kubectl(
            sim,
            "patch",
            kind.lower(),
            "istio-egressgateway",
            *WHERE,
            "--type",
            "merge",
            "-p",
            json.dumps(patch),
        )
        assert restored.returncode == 0, restored.stderr
    restored = gateway(sim)
    for kind, snapshot in before.items():
        assert strip_server_fields(restored[kind]) == strip_server_fields(snapshot), kind

    # Back without the annotation, so a new apply is again a first client-side apply.
    third = kubectl(sim, "apply", "-f", "-", stdin=NOTES)
    assert third.stdout.count(" configured\n") == 2 and third.stderr.count("is missing the") == 2


def test_an_apply_removes_what_its_last_apply_had_and_the_file_dropped(booted) -> None:  # noqa: F811
    sim, _ = booted
    tool(sim, "k3s-s", "cloud-init", "status", "--wait")
    service = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default, labels: {app: web, tier: front}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}, {name: admin, port: 9000}]
"""
    assert kubectl(sim, "apply", "-f", "-", stdin=service).stdout == "service/web created\n"
    assert kubectl(sim, "apply", "-f", "-", stdin=service).stdout == "service/web unchanged\n"
    labelled = kubectl(sim, "label", "service", "web", "owner=ops")
    assert labelled.returncode == 0, labelled.stderr

    smaller = service.replace(", {name: admin, port: 9000}", "").replace(", tier: front", "")
    applied = kubectl(sim, "apply", "-f", "-", stdin=smaller)

    assert (applied.stdout, applied.stderr) == ("service/web configured\n", "")
    web = json.loads(kubectl(sim, "get", "service", "web", "-o", "json").stdout)
    assert ports(web) == {("http", 80, 8080)}, "in the last apply, gone from the file: deleted"
    assert web["metadata"]["labels"] == {"app": "web", "owner": "ops"}, "set by someone else: kept"
    # kubectl v0.30.5 label.go `updateDataChangeMsg`: "unlabeled" only without --overwrite
    assert kubectl(sim, "label", "service", "web", "owner-").stdout == "service/web unlabeled\n"
    assert kubectl(sim, "label", "service", "web", "app-", "--overwrite").stdout == "service/web labeled\n"


def test_last_applied_is_the_json_kubectl_writes() -> None:
    """kubectl's `GetModifiedConfiguration`: the object without the annotation, `annotations: {}` when
    the file had none, encoded by Go's encoding/json (sorted keys, compact, HTML-escaped, newline)."""
    doc = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c"}, "data": {"b": "<&>", "a": "1"}}
    assert strategic.last_applied(doc) == (
        '{"apiVersion":"v1","data":{"a":"1","b":"\\u003c\\u0026\\u003e"},"kind":"ConfigMap",'
        '"metadata":{"annotations":{},"name":"c"}}\n'
    )


def test_custom_resources_get_a_json_merge_patch_lists_replaced_whole() -> None:
    """patcher.go: a kind whose API takes no strategic merge patch (a CRD's) gets
    `CreateThreeWayJSONMergePatch`: lists are replaced, keys others set are kept."""
    first = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {"hosts": ["a.example", "b.example"], "resolution": "NONE", "location": "MESH_EXTERNAL"},
    }
    live = {
        **first,
        "metadata": {**first["metadata"], "annotations": {LAST_APPLIED: strategic.last_applied(first)}},
    }
    live["spec"] = {**first["spec"], "exportTo": ["."]}  # set by someone else
    second = {**first, "spec": {"hosts": ["b.example"], "resolution": "NONE"}}

    stored, empty = strategic.apply_patch("ServiceEntry", False, live, second)

    assert not empty
    assert stored["spec"] == {"hosts": ["b.example"], "resolution": "NONE", "exportTo": ["."]}
    assert json.loads(stored["metadata"]["annotations"][LAST_APPLIED]) == {
        **second,
        "metadata": {**second["metadata"], "annotations": {}},
    }
    again, empty = strategic.apply_patch("ServiceEntry", False, stored, second)
    assert (again, empty) == (stored, True), "nothing to send: `unchanged`"


def test_dry_runs_change_nothing_and_say_which_kind_they_were(booted) -> None:  # noqa: F811
    sim, _ = booted
    tool(sim, "k3s-s", "cloud-init", "status", "--wait")
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\ndata: {a: '1'}\n"
    assert kubectl(sim, "apply", "--dry-run=client", "-f", "-", stdin=config).stdout == (
        "configmap/c created (dry run)\n"
    )
    assert kubectl(sim, "apply", "--dry-run=server", "-f", "-", stdin=config).stdout == (
        "configmap/c created (server dry run)\n"
    )
    assert kubectl(sim, "get", "configmap", "c").returncode == 1, "nothing was created"
    assert kubectl(sim, "apply", "-f", "-", stdin=config).stdout == "configmap/c created\n"
    # kubectl v0.30.5 apply.go: a client dry run sends no patch, so it cannot say `unchanged`
    assert kubectl(sim, "apply", "--dry-run=client", "-f", "-", stdin=config).stdout == (
        "configmap/c configured (dry run)\n"
    )
    assert kubectl(sim, "apply", "--dry-run=server", "-f", "-", stdin=config).stdout == (
        "configmap/c unchanged (server dry run)\n"
    )
    bad = kubectl(sim, "apply", "--dry-run=maybe", "-f", "-", stdin=config)
    assert (bad.returncode, bad.stderr) == (
        1,
        'error: Invalid dry-run value (maybe). Must be "none", "server", or "client".\n',
    )
