"""The engine against a fake cluster: order of commands, retries, cleanup on every exit path,
mesh and snapshot restore, the leak check, --keep, evidence and the pre-flight gate."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from lab.analyzer import Finding
from lab.errors import LabError, RemoteCommandError
from lab.scenario.engine import Interrupts
from lab.scenario.results import FAILED, LEAK_CHECK, PASSED, SKIPPED

from .fakes import GATEWAY_DEPLOYMENT, GATEWAY_SERVICE, MESH, FakeCluster, ok
from .helpers import DEMO, make_engine, write_scenario

GATEWAY_LOG = '"envoy://sni_listener/" sni_cluster envoy://internal_client_address/ en.wikipedia.org -\n'
PASSTHROUGH_LOG = '"203.0.113.7:443" PassthroughCluster 10.42.0.5:40000 en.wikipedia.org -\n'


def passing_cluster() -> FakeCluster:
    cluster = FakeCluster()
    cluster.exec = lambda args: ok("<title>Wikipedia, the free encyclopedia</title>\n")
    cluster.logs = lambda args: ok(GATEWAY_LOG)
    return cluster


def test_a_passing_run_applies_checks_and_cleans_up_in_order(tmp_path: Path) -> None:
    cluster = passing_cluster()
    engine, out = make_engine(cluster, tmp_path / "lab")

    result = engine.run(write_scenario(tmp_path))

    assert result.passed, out.getvalue()
    steps = [
        v for v in cluster.verbs() if v.split()[1] in ("apply", "wait", "exec", "logs", "delete", "patch")
    ]
    assert steps == [
        "kubectl patch",  # mesh: REGISTRY_ONLY
        "kubectl apply",
        "kubectl apply",
        "kubectl wait",
        "kubectl exec",
        "kubectl logs",
        "kubectl delete",  # config.yaml first: reverse order of apply
        "kubectl delete",
        "kubectl patch",  # mesh restored
    ]
    first_delete, second_delete = cluster.stdin_of("kubectl delete")
    assert [d["kind"] for d in yaml.safe_load_all(first_delete)] == ["VirtualService", "ServiceEntry"]
    assert [d["kind"] for d in yaml.safe_load_all(second_delete)] == ["Namespace"]
    assert cluster.mesh == MESH
    assert not cluster.istio and "demo" not in cluster.namespaces
    assert [c.status for c in result.cases][-1] == PASSED and result.cases[-1].name == LEAK_CHECK
    assert "✓ curl en.wikipedia.org" in out.getvalue()


def test_commands_carry_the_pod_container_and_since_time(tmp_path: Path) -> None:
    cluster = passing_cluster()
    engine, _ = make_engine(cluster, tmp_path / "lab")

    engine.run(write_scenario(tmp_path))

    exec_args = next(args for tool, args, _ in cluster.calls if args[0] == "exec")
    assert exec_args == (
        "exec",
        "-n",
        "default",
        "pod1",
        "-c",
        "netshoot",
        "--",
        "curl",
        "-sS",
        "https://en.wikipedia.org/",
    )
    logs_args = next(args for tool, args, _ in cluster.calls if args[0] == "logs")
    # since the exec step began by k3s-s's clock (12:27:03.250001789), not the laptop's (12:30:15.75)
    assert logs_args == (
        "logs",
        "-n",
        "demo",
        "-l",
        "app=gw",
        "-c",
        "istio-proxy",
        # whole seconds reach the kubelet: a second earlier, then filtered by each line's own stamp
        "--since-time=2024-11-26T12:27:02Z",
        "--timestamps",
        "--tail=-1",
    )
    patch = next(args for tool, args, _ in cluster.calls if args[0] == "patch")
    assert "mode: REGISTRY_ONLY" in json.loads(patch[patch.index("-p") + 1])["data"]["mesh"]


def test_assertions_retry_until_the_config_reaches_the_proxy(tmp_path: Path) -> None:
    cluster = passing_cluster()
    answers = iter([(35, "", "curl: (35) SSL_ERROR_SYSCALL"), (0, "Wikipedia", "")])
    cluster.exec = lambda args: next(answers)
    engine, _ = make_engine(cluster, tmp_path / "lab")
    scenario = write_scenario(tmp_path, _with_timeout(5))

    result = engine.run(scenario)

    assert result.passed
    assert cluster.verbs().count("kubectl exec") == 2


def test_a_failed_assertion_shows_expected_and_received_collects_evidence_and_cleans_up(
    tmp_path: Path,
) -> None:
    cluster = passing_cluster()
    cluster.logs = lambda args: ok(PASSTHROUGH_LOG)
    engine, out = make_engine(cluster, tmp_path / "lab")

    result = engine.run(write_scenario(tmp_path))

    assert not result.passed
    failed = [c for c in result.cases if c.status == FAILED]
    assert [c.name for c in failed] == [
        "gateway log shows sni_cluster: istio-proxy log of app=gw in demo contains 'sni_cluster'",
        "gateway log shows sni_cluster: istio-proxy log of app=gw in demo does not contain 'PassthroughCluster'",
    ]
    assert "PassthroughCluster" in failed[0].received
    text = out.getvalue()
    assert "expected: istio-proxy log of app=gw in demo contains 'sni_cluster'" in text
    assert 'received: "203.0.113.7:443" PassthroughCluster' in text
    assert result.report_dir is not None and f"evidence in {result.report_dir}/" in text.replace("\n", "")
    assert sorted(p.name for p in result.report_dir.iterdir()) == [
        "client-clusters.json",
        "client-endpoints.json",
        "client-listeners.json",
        "default.pod1.log",  # the `invoke trace --logs` layout: NAMESPACE.POD.log of every proxy
        "demo.gateway-pod-1.log",
        "gateway-demo-app-gw-clusters.json",
        "gateway-demo-app-gw-endpoints.json",
        "gateway-demo-app-gw-listeners.json",
        "istioctl-analyze.json",
        "result.json",
    ]
    proxy_config = [
        args[1:3] for tool, args, _ in cluster.calls if tool == "istioctl" and args[0] == "proxy-config"
    ]
    assert ("listeners", "pod1.default") in proxy_config and (
        "endpoints",
        "gateway-pod-1.demo",
    ) in proxy_config
    verbs = cluster.verbs()
    assert verbs.index("istioctl analyze") < verbs.index("kubectl delete"), "evidence before cleanup"
    assert cluster.mesh == MESH and "demo" not in cluster.namespaces


def test_a_negative_assertion_is_judged_once_on_the_output_that_satisfied_the_positive_ones(
    tmp_path: Path,
) -> None:
    cluster = passing_cluster()
    cluster.logs = lambda args: ok(GATEWAY_LOG + PASSTHROUGH_LOG)
    engine, _ = make_engine(cluster, tmp_path / "lab")

    result = engine.run(write_scenario(tmp_path, _with_timeout(30)))

    statuses = {c.expected: c.status for c in result.cases}
    assert statuses["istio-proxy log of app=gw in demo contains 'sni_cluster'"] == PASSED
    assert statuses["istio-proxy log of app=gw in demo does not contain 'PassthroughCluster'"] == FAILED
    step_reads = [
        args for _, args, _ in cluster.calls if args[0] == "logs" and {"app=gw", "gateway-pod-1"} & set(args)
    ]
    assert len(step_reads) == 2, "one read by the step (no waiting for the line to go away), one for evidence"


def test_ctrl_c_mid_scenario_stops_at_the_next_call_and_cleans_up(tmp_path: Path) -> None:
    cluster = passing_cluster()
    interrupts = Interrupts()

    def sigint_during_exec(tool: str, args: tuple[str, ...]) -> None:
        if args[0] == "exec":
            interrupts.count += 1  # what the CLI's SIGINT handler does

    cluster.on_call = sigint_during_exec
    engine, _ = make_engine(cluster, tmp_path / "lab", interrupts=interrupts)

    result = engine.run(write_scenario(tmp_path))

    assert result.interrupted and not result.passed
    verbs = cluster.verbs()
    assert "kubectl logs" not in verbs
    assert verbs[verbs.index("kubectl exec") + 1 :].count("kubectl delete") == 2
    assert cluster.mesh == MESH and not cluster.istio
    assert {c.status for c in result.cases if c.name.startswith("gateway log")} == {SKIPPED}


def test_a_keyboard_interrupt_raised_inside_a_command_also_cleans_up(tmp_path: Path) -> None:
    cluster = passing_cluster()

    def interrupted(args: tuple[str, ...]) -> tuple[int, str, str]:
        raise KeyboardInterrupt

    cluster.exec = interrupted
    engine, _ = make_engine(cluster, tmp_path / "lab")

    result = engine.run(write_scenario(tmp_path))

    assert result.interrupted
    assert cluster.verbs().count("kubectl delete") == 2 and cluster.mesh == MESH


def test_a_second_ctrl_c_abandons_the_cleanup_and_says_what_is_left(tmp_path: Path) -> None:
    cluster = passing_cluster()
    interrupts = Interrupts()

    def presses(tool: str, args: tuple[str, ...]) -> None:
        if args[0] in ("exec", "delete"):
            interrupts.count += 1

    cluster.on_call = presses
    engine, out = make_engine(cluster, tmp_path / "lab", interrupts=interrupts)

    result = engine.run(write_scenario(tmp_path))

    assert result.interrupted
    assert cluster.verbs().count("kubectl delete") == 1
    text = out.getvalue()
    assert "cleanup abandoned; still to do: delete namespace.yaml; restore the mesh config" in text
    assert cluster.mesh != MESH, "abandoned means abandoned"


def test_the_leak_check_names_what_was_left_behind(tmp_path: Path) -> None:
    cluster = passing_cluster()
    cluster.keep_on_delete = {"demo", "wikipedia"}
    engine, out = make_engine(cluster, tmp_path / "lab")

    result = engine.run(write_scenario(tmp_path))

    assert not result.passed
    leak = result.cases[-1]
    assert leak.name == LEAK_CHECK and leak.status == FAILED
    assert leak.received == (
        "left behind: Namespace demo; left behind: ServiceEntry demo/wikipedia; "
        "left behind: VirtualService demo/wikipedia"
    )
    assert "left behind: Namespace demo" in out.getvalue()


def test_the_leak_check_sees_a_mesh_config_that_was_not_restored(tmp_path: Path) -> None:
    cluster = passing_cluster()
    original_patch = cluster._patch

    def restore_is_lost(args: tuple[str, ...]) -> tuple[int, str, str]:
        if "REGISTRY_ONLY" not in args[args.index("-p") + 1]:
            return ok("patched\n")  # the write is lost
        return original_patch(args)

    cluster._patch = restore_is_lost  # type: ignore[method-assign]
    engine, _ = make_engine(cluster, tmp_path / "lab")

    result = engine.run(write_scenario(tmp_path))

    assert result.cases[-1].received == (
        "changed: ConfigMap istio-system/istio data.mesh (outboundTrafficPolicy ALLOW_ANY before, REGISTRY_ONLY now)"
    )


PRESERVING = """\
name: clobber
title: re-declares the installed egress gateway
teaches: restore what you clobber
preserve:
  - {kind: Service, namespace: istio-system, name: istio-egressgateway}
  - {kind: Deployment, namespace: istio-system, name: istio-egressgateway}
steps:
  - apply: gateway.yaml
  - name: curl
    exec: {command: [curl, https://en.wikipedia.org/]}
    expect: {exitCode: 0}
"""
CLOBBER = """\
apiVersion: v1
kind: Service
metadata: {name: istio-egressgateway, namespace: istio-system, labels: {added: by-the-notes}}
spec: {selector: {istio: egressgateway}, ports: [{name: https, port: 443}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: istio-egressgateway, namespace: istio-system}
spec:
  selector: {matchLabels: {app: istio-egressgateway, istio: egressgateway}}
  template:
    metadata: {labels: {app: istio-egressgateway, istio: egressgateway}}
    spec: {containers: [{name: istio-proxy, image: docker.io/istio/proxyv2:1.23.2, args: [proxy, router]}]}
---
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {name: istio-egressgateway, namespace: istio-system}
spec: {selector: {istio: egressgateway}, servers: [{port: {number: 443, name: tls, protocol: TLS}, hosts: ["*"]}]}
"""


def test_re_declared_installed_objects_are_saved_and_restored_exactly(tmp_path: Path) -> None:
    cluster = passing_cluster()
    engine, _ = make_engine(cluster, tmp_path / "lab")
    scenario = write_scenario(tmp_path, PRESERVING, {"gateway.yaml": CLOBBER})

    result = engine.run(scenario)

    assert result.passed
    saved = next(args for tool, args, _ in cluster.calls if args[:2] == ("get", "service,deployment"))
    assert saved == ("get", "service,deployment", "istio-egressgateway", "-n", "istio-system", "-o", "json")
    deleted = [d["kind"] for text in cluster.stdin_of("kubectl delete") for d in yaml.safe_load_all(text)]
    assert deleted == ["Gateway"], "the installed objects are restored, never deleted"
    service = cluster.objects[("service", "istio-system", "istio-egressgateway")]
    assert service["spec"] == GATEWAY_SERVICE["spec"] and "added" not in service["metadata"]["labels"]
    deployment = cluster.objects[("deployment", "istio-system", "istio-egressgateway")]
    assert deployment["spec"] == GATEWAY_DEPLOYMENT["spec"]
    assert result.cases[-1].status == PASSED


def test_the_leak_check_fails_when_a_re_declared_object_was_not_restored(tmp_path: Path) -> None:
    cluster = passing_cluster()
    original = cluster._patch
    cluster._patch = lambda args: ok("") if args[1] == "service" else original(args)  # type: ignore[method-assign]
    engine, _ = make_engine(cluster, tmp_path / "lab")

    result = engine.run(write_scenario(tmp_path, PRESERVING, {"gateway.yaml": CLOBBER}))

    assert (
        result.cases[-1].received
        == "not restored: Service istio-system/istio-egressgateway differs from its snapshot"
    )


def test_an_analyzer_error_stops_the_scenario_before_anything_is_applied(tmp_path: Path) -> None:
    cluster = passing_cluster()
    finding = Finding(
        "KIA0203", "error", "DestinationRule", "demo", "gw", "subset selects no pod", "fix labels"
    )
    engine, out = make_engine(cluster, tmp_path / "lab", findings=[finding])

    result = engine.run(write_scenario(tmp_path))

    assert not result.passed
    assert not [v for v in cluster.verbs() if v in ("kubectl apply", "kubectl patch", "kubectl exec")]
    assert result.cases[0].name == "pre-flight analysis" and "KIA0203" in result.cases[0].received
    assert {c.status for c in result.cases[1:]} == {SKIPPED}
    assert "error KIA0203 DestinationRule demo/gw: subset selects no pod" in out.getvalue()


def test_an_expected_finding_is_a_lesson_not_a_stop(tmp_path: Path) -> None:
    cluster = passing_cluster()
    finding = Finding(
        "KIA0203", "error", "DestinationRule", "demo", "gw", "subset selects no pod", "fix labels"
    )
    engine, out = make_engine(cluster, tmp_path / "lab", findings=[finding])
    text = write_scenario(tmp_path).path.read_text().replace("steps:", "expectedFindings: [KIA0203]\nsteps:")

    result = engine.run(write_scenario(tmp_path, text))

    assert result.passed
    assert "(expected: part of the lesson)" in out.getvalue()


def test_keep_leaves_everything_and_the_next_run_cleans_it_up_first(tmp_path: Path) -> None:
    cluster = passing_cluster()
    engine, out = make_engine(cluster, tmp_path / "lab")
    scenario = write_scenario(tmp_path)

    kept = engine.run(scenario, keep=True)

    assert kept.passed and kept.kept
    assert "kubectl delete" not in cluster.verbs()
    assert "demo" in cluster.namespaces and "REGISTRY_ONLY" in cluster.mesh
    assert "kept for inspection (--keep):" in out.getvalue()
    assert (tmp_path / "lab" / "kept" / "demo.json").exists()

    cluster.calls.clear()
    again, _ = make_engine(cluster, tmp_path / "lab")
    result = again.run(scenario)

    verbs = cluster.verbs()
    assert verbs[:3] == ["kubectl delete", "kubectl delete", "kubectl patch"], "leftovers first"
    assert result.passed and result.cases[-1].status == PASSED
    assert cluster.mesh == MESH and not (tmp_path / "lab" / "kept" / "demo.json").exists()


def _with_timeout(seconds: float) -> str:
    return DEMO.replace("timeout: 0.3", f"timeout: {seconds}")


def test_a_cluster_that_cannot_be_read_stops_the_run_before_any_change(tmp_path: Path) -> None:
    cluster = passing_cluster()

    def refuse(tool: str, args: tuple[str, ...]) -> None:
        if args[:2] == ("get", "namespaces"):
            raise RemoteCommandError("k3s-s", "kubectl get namespaces", 1, "connection refused")

    cluster.on_call = refuse
    engine, out = make_engine(cluster, tmp_path / "lab")

    result = engine.run(write_scenario(tmp_path))

    assert not result.passed
    assert [c.name for c in result.problems] == ["prepare the cluster"]
    assert not {"kubectl apply", "kubectl patch", "kubectl delete"} & set(cluster.verbs())
    assert "connection refused" in out.getvalue()


def test_evidence_is_best_effort_and_lists_what_could_not_be_collected(tmp_path: Path) -> None:
    cluster = passing_cluster()
    cluster.logs = lambda args: ok(PASSTHROUGH_LOG)

    def proxy_config_fails(tool: str, args: tuple[str, ...]) -> None:
        if tool == "istioctl" and args[:2] == ("proxy-config", "clusters"):
            raise LabError("k3s-s: `istioctl proxy-config` took longer than 60s")

    cluster.on_call = proxy_config_fails
    engine, _ = make_engine(cluster, tmp_path / "lab")

    result = engine.run(write_scenario(tmp_path))

    assert result.report_dir is not None
    files = {p.name for p in result.report_dir.iterdir()}
    assert {"client-listeners.json", "client-endpoints.json", "istioctl-analyze.json"} <= files
    assert "client-clusters.json" not in files
    errors = (result.report_dir / "errors.txt").read_text().splitlines()
    assert errors[0] == "client-clusters.json: k3s-s: `istioctl proxy-config` took longer than 60s"
