"""The scenario `path` expectation: schema, loading, and judging a trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import verdicts
from lab.errors import LabError
from lab.scenario.model import load_scenario
from lab.trace import ProxyLog, Target, trace
from lab.trace.expect import PathExpect, selects
from lab.trace.proxylog import CLIENT, GATEWAY

from . import lines as L

SNI_POD = "istio-egress/istio-egressgateway-sni-5d9c7b6f4-x2x9q"
LABELS = {SNI_POD: {"app": "istio-egressgateway-sni", "istio": "egressgateway-sni"}}


def sni_trace():
    client = ProxyLog.read("default/pod1", CLIENT, L.SNI_CLIENT, L.POD1)
    gateway = ProxyLog.read(SNI_POD, GATEWAY, "\n".join([L.SNI_GATEWAY, L.SNI_INTERNAL]), L.SNI_GW)
    return trace(client, [gateway], Target.parse("https://en.wikipedia.org/"))


def test_the_verdict_and_the_gateway_pod_must_both_match() -> None:
    observed = sni_trace()

    assert PathExpect(verdicts.EGRESS_GATEWAY, "istio-egress", "istio=egressgateway-sni").check(
        observed, LABELS
    )[0]
    assert PathExpect(verdicts.EGRESS_GATEWAY).check(observed, LABELS)[0]
    demo = PathExpect(verdicts.EGRESS_GATEWAY, "istio-system", "istio=egressgateway")
    ok, received = demo.check(observed, LABELS)
    assert not ok and f"through {SNI_POD}, not a pod of istio=egressgateway in istio-system" in received
    ok, received = PathExpect(verdicts.PASSTHROUGH).check(observed, LABELS)
    assert not ok and received.startswith("observed egress-gateway: default/pod1's sidecar sent it to")


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("istio=egressgateway-sni", True),
        ("istio==egressgateway-sni,app", True),
        ("istio!=egressgateway-sni", False),
        ("istio=egressgateway", False),
        ("version", False),
    ],
)
def test_selectors_read_as_kubectl_reads_equality_selectors(selector: str, expected: bool) -> None:
    assert selects(selector, LABELS[SNI_POD]) is expected


SCENARIO = """\
name: demo
title: t
teaches: t
steps:
  - apply: a.yaml
  - exec: {command: COMMAND}
    expect:
      path: PATH
"""


def write(tmp_path: Path, command: str, path: str) -> Path:
    (tmp_path / "manifests" / "demo").mkdir(parents=True)
    (tmp_path / "manifests" / "demo" / "a.yaml").write_text("kind: ServiceEntry\n")
    file = tmp_path / "demo.yaml"
    file.write_text(SCENARIO.replace("COMMAND", command).replace("PATH", path))
    return file


def test_a_path_expectation_loads_as_an_assertion(tmp_path: Path) -> None:
    file = write(tmp_path, '[curl, -sS, "https://x.example/"]', "{verdict: direct}")
    step = load_scenario(file, tmp_path / "manifests").steps[1]
    assert step.traces_path and [a.description for a in step.assertions] == ["path is direct"]


@pytest.mark.parametrize(
    ("command", "path", "message"),
    [
        ("[wget, https://x.example/]", "{verdict: direct}", "the path is traced for a curl command"),
        ("[curl, -sS]", "{verdict: direct}", "the curl command has no URL to trace"),
        ('[curl, "https://x.example/"]', "{verdict: gateway}", "expect.path.verdict"),
        ('[curl, "https://x.example/"]', "{verdict: direct, gateway: {namespace: a}}", "expect.path.gateway"),
    ],
    ids=["not-curl", "no-url", "not-a-verdict", "gateway-without-selector"],
)
def test_a_wrong_path_expectation_is_one_line_naming_the_field(
    tmp_path: Path, command: str, path: str, message: str
) -> None:
    with pytest.raises(LabError) as error:
        load_scenario(write(tmp_path, command, path), tmp_path / "manifests")
    assert message in error.value.message
