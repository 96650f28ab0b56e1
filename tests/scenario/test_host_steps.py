"""The hostLogs step (a lab host's file over SSH, `{node_ip:...}` filled from the cluster) and the
patch step (a preserved Deployment, its rollout waited for, restored in cleanup)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from lab.errors import LabError
from lab.nodes import CommandResult

from .fakes import FakeCluster, ok
from .helpers import make_engine, write_scenario

POD1_NODE, GATEWAY_NODE = "192.168.10.101", "192.168.10.102"
# k3s-s's clock in the fakes is 12:27:03.250001 on 26 Nov 2024: the exec step begins then.
SAME_SECOND, SECOND_BEFORE = "26/Nov/2024:12:27:03 +0000", "26/Nov/2024:12:27:02 +0000"
AGENT = '"-" "curl/8.7.1"'

SCENARIO = """\
name: testpc
title: host logs
teaches: what testpc saw
steps:
  - name: call testpc
    exec: {command: [curl, -sS, "http://testpc.lab.internal/?via=sidecar"]}
    expect: {exitCode: 0}
  - name: testpc saw pod1's node
    timeout: 0.3
    hostLogs: {node: testpc, path: /var/log/nginx/access.log}
    expect:
      matches: ['^{node_ip:default/pod1} - - \\[[^]]+\\] "GET /\\?via=sidecar ']
"""
PATCHING = """\
name: pinned
title: patch step
teaches: pin the gateway
preserve:
  - {kind: Deployment, namespace: istio-system, name: istio-egressgateway}
steps:
  - name: keep the gateway off pod1's node
    patch:
      kind: Deployment
      namespace: istio-system
      name: istio-egressgateway
      merge: {spec: {template: {spec: {nodeSelector: {kubernetes.io/hostname: k3s-w2}}}}}
"""
SERVICE_ENTRY = "apiVersion: networking.istio.io/v1beta1\nkind: ServiceEntry\nmetadata: {name: t}\n"


class PodsOnNodes(FakeCluster):
    """The fake cluster, answering `kubectl get pods -n NS NAME|-l SEL` with pods on known nodes."""

    def _get(self, args: tuple[str, ...]) -> dict[str, Any]:
        if args[1] == "pods" and "-A" not in args:
            namespace = args[args.index("-n") + 1]
            if namespace == "default":
                return {"kind": "Pod", "metadata": {"name": "pod1"}, "status": {"hostIP": POD1_NODE}}
            terminating = {"name": "gw-old", "deletionTimestamp": "2024-11-26T12:27:00Z"}
            return {
                "kind": "List",
                "items": [
                    {"kind": "Pod", "metadata": {"name": "gw-new"}, "status": {"hostIP": GATEWAY_NODE}},
                    {"kind": "Pod", "metadata": terminating, "status": {"hostIP": POD1_NODE}},
                ],
            }
        return super()._get(args)


class Host:
    """testpc's shell: records commands, answers with the given file text (or a failure)."""

    def __init__(self, text: str = "", code: int = 0) -> None:
        self.text, self.code, self.commands = text, code, []

    def run(
        self, command: str, *, stdin: str | None = None, check: bool = True, timeout: float | None = None
    ):
        self.commands.append(command)
        if self.code:
            return CommandResult(
                "testpc", command, self.code, "", f"tail: cannot open {shlex.split(command)[-1]!r}"
            )
        return CommandResult("testpc", command, 0, self.text, "")


def run(tmp_path: Path, host: Host, text: str = SCENARIO):
    cluster = PodsOnNodes()
    cluster.exec = lambda args: ok("<title>Welcome to nginx!</title>")
    asked: list[str] = []

    def hosts(name: str) -> Host:
        asked.append(name)
        return host

    engine, out = make_engine(cluster, tmp_path / "lab", hosts=hosts)
    scenario = write_scenario(tmp_path, text, {"se.yaml": SERVICE_ENTRY})
    return engine.run(scenario), cluster, asked, out.getvalue()


def line(address: str, stamp: str = SAME_SECOND, via: str = "sidecar") -> str:
    return f'{address} - - [{stamp}] "GET /?via={via} HTTP/1.1" 200 612 {AGENT}\n'


def test_host_logs_reads_the_file_on_the_host_and_fills_in_the_pods_node(tmp_path: Path) -> None:
    host = Host(line(GATEWAY_NODE, via="other") + line(POD1_NODE))

    result, cluster, asked, out = run(tmp_path, host)

    assert result.passed, out
    assert asked == ["testpc"] and host.commands == ["sudo tail -n 20000 -- /var/log/nginx/access.log"]
    assert ("kubectl", ("get", "pods", "-n", "default", "pod1", "-o", "json"), None) in cluster.calls


def test_a_line_from_another_node_fails_and_says_which_address_was_wanted(tmp_path: Path) -> None:
    result, _, _, _ = run(tmp_path, Host(line(GATEWAY_NODE)))

    assert not result.passed
    [case] = [c for c in result.cases if c.name.startswith("testpc saw pod1's node")]
    assert case.received.startswith(f"{{node_ip:default/pod1}} is {POD1_NODE}; ")
    assert GATEWAY_NODE in case.received


def test_lines_stamped_before_the_exec_began_are_not_counted(tmp_path: Path) -> None:
    result, _, _, _ = run(tmp_path, Host(line(POD1_NODE, stamp=SECOND_BEFORE)))

    assert not result.passed
    [case] = [c for c in result.cases if c.name.startswith("testpc saw pod1's node")]
    assert case.received.endswith("no log lines since the exec step began")


def test_a_selector_names_the_nodes_of_its_running_pods_only(tmp_path: Path) -> None:
    text = SCENARIO.replace("{node_ip:default/pod1}", "{node_ip:istio-system/istio=egressgateway}")
    passing, _, _, _ = run(tmp_path / "a", Host(line(GATEWAY_NODE)), text)
    terminating_pods_node, _, _, _ = run(tmp_path / "b", Host(line(POD1_NODE)), text)

    assert passing.passed and not terminating_pods_node.passed


def test_an_unreadable_file_is_one_line_naming_the_host_and_the_path(tmp_path: Path) -> None:
    result, _, _, _ = run(tmp_path, Host(code=1))

    assert not result.passed
    [case] = [c for c in result.cases if c.name.startswith("testpc saw pod1's node")]
    assert "testpc: cannot read /var/log/nginx/access.log: tail: cannot open" in case.received


def test_patch_waits_for_the_rollout_and_cleanup_puts_the_deployment_back(tmp_path: Path) -> None:
    result, cluster, _, out = run(tmp_path, Host(), PATCHING)

    assert result.passed, out
    patches = [a for tool, a, _ in cluster.calls if a[:3] == ("patch", "deployment", "istio-egressgateway")]
    assert [json.loads(p[-1]) for p in patches] == [
        {"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": "k3s-w2"}}}}},
        {"spec": {"template": {"spec": {"nodeSelector": None}}}},
    ]
    rollouts = [a for tool, a, _ in cluster.calls if a[0] == "rollout"]
    assert rollouts == [
        ("rollout", "status", "deployment/istio-egressgateway", "-n", "istio-system", f"--timeout={t}s")
        for t in (300, 300)
    ]
    spec = cluster.objects[("deployment", "istio-system", "istio-egressgateway")]["spec"]["template"]["spec"]
    assert "nodeSelector" not in spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            PATCHING.replace(
                "preserve:\n  - {kind: Deployment, namespace: istio-system, name: istio-egressgateway}\n", ""
            ),
            "steps[0].patch: Deployment istio-system/istio-egressgateway is not listed under `preserve`",
        ),
        (
            SCENARIO.replace(
                "hostLogs: {node: testpc, path: /var/log/nginx/access.log}",
                "logs: {namespace: default, pod: pod1, container: istio-proxy}",
            ),
            "steps[1].expect.matches: {node_ip:...} is filled in for hostLogs steps only",
        ),
        (
            SCENARIO.replace(
                '  - name: call testpc\n    exec: {command: [curl, -sS, "http://testpc.lab.internal/?via=sidecar"]}\n    expect: {exitCode: 0}\n',
                "",
            ),
            "steps[0].hostLogs: a hostLogs step reads logs since the last exec step; none before it",
        ),
        (SCENARIO.replace("node: testpc", "node: laptop"), "steps[1].hostLogs.node: 'laptop' is not one of"),
    ],
    ids=["patch not preserved", "node_ip in a pod log", "hostLogs before exec", "unknown host"],
)
def test_mistakes_in_the_new_steps_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(LabError) as caught:
        write_scenario(tmp_path, text, {"se.yaml": SERVICE_ENTRY})
    assert message in str(caught.value)
