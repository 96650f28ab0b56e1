"""Small scenarios written into a temporary folder, and an engine wired to a fake cluster."""

from __future__ import annotations

import io
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from lab.progress import Progress
from lab.scenario.engine import Engine, Interrupts
from lab.scenario.model import Scenario, load_scenario

from .fakes import FakeCluster

REPO = Path(__file__).resolve().parents[2]
# The shipped scenarios in course order, written out here rather than taken from the catalog.
SCENARIOS = [
    "egress-sni",
    "egress-sni-broken",
    "egress-gateway-http",
    "egress-gateway-https",
    "egress-registry-only",
    "egress-tls-origination",
    "egress-wildcard-single-host",
    "egress-gateway-tls-origination",
    "egress-gateway-enforced",
    "egress-testpc-source-ip",
]
SIX = SCENARIOS  # the list's first name, from when the course had six; same list
# The ones that promise the egress gateway, in course order: under `labsim --egress passthrough`
# each must fail at a path check.
THROUGH_A_GATEWAY = [
    "egress-sni",
    "egress-gateway-http",
    "egress-gateway-https",
    "egress-wildcard-single-host",
    "egress-gateway-tls-origination",
    "egress-gateway-enforced",
    "egress-testpc-source-ip",
]


def scenario_files() -> dict[str, dict[str, Any]]:
    """scenarios/*.yaml as written, by file name: an account of them that does not go through
    lab.scenario.model."""
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted((REPO / "scenarios").glob("*.yaml"))}


def expect_entries(scenario: dict[str, Any]) -> int:
    """How many checks a scenario file's `expect` blocks spell out: one per value of each key."""
    return sum(
        len(value) if isinstance(value, list) else 1
        for step in scenario["steps"]
        for value in (step.get("expect") or {}).values()
    )


NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: demo
"""
CONFIG = """\
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: wikipedia, namespace: demo}
spec: {hosts: ["*.wikipedia.org"], ports: [{number: 443, name: tls, protocol: TLS}], resolution: NONE}
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: wikipedia, namespace: demo}
spec: {hosts: ["*.wikipedia.org"], tls: [{match: [{port: 443, sniHosts: ["*.wikipedia.org"]}],
       route: [{destination: {host: gw.demo.svc.cluster.local}}]}]}
"""
DEMO = """\
name: demo
title: A small scenario for the engine tests
teaches: how the engine runs a scenario
mesh: {outboundTrafficPolicy: REGISTRY_ONLY}
gateways: [{namespace: demo, selector: app=gw}]
steps:
  - apply: [namespace.yaml, config.yaml]
  - wait: {deployment: gw, namespace: demo}
  - name: curl en.wikipedia.org
    timeout: 0.3
    exec: {command: [curl, -sS, "https://en.wikipedia.org/"]}
    expect: {exitCode: 0, stdoutContains: [Wikipedia]}
  - name: gateway log shows sni_cluster
    timeout: 0.3
    logs: {namespace: demo, selector: app=gw, container: istio-proxy}
    expect: {contains: [sni_cluster], notContains: [PassthroughCluster]}
"""
FIXED_NOW = datetime(2024, 11, 26, 12, 30, 15, 750000, tzinfo=timezone.utc)


def write_scenario(root: Path, text: str = DEMO, manifests: dict[str, str] | None = None) -> Scenario:
    text = textwrap.dedent(text)
    name = text.split("name:", 1)[1].split()[0]
    folder = root / "manifests" / name
    folder.mkdir(parents=True, exist_ok=True)
    for file, body in (manifests or {"namespace.yaml": NAMESPACE, "config.yaml": CONFIG}).items():
        (folder / file).write_text(body)
    path = root / "scenarios" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return load_scenario(path, root / "manifests")


def make_engine(
    cluster: FakeCluster,
    lab_dir: Path,
    findings: list[Any] | None = None,
    interrupts: Interrupts | None = None,
    hosts: Any = None,
) -> tuple[Engine, io.StringIO]:
    out = io.StringIO()
    progress = Progress(Console(file=out, width=300, highlight=False), spinner=False)
    engine = Engine(
        cluster,
        progress,
        lab_dir,
        analyze=lambda paths, registry_only: list(findings or []),
        interrupts=interrupts,
        clock=lambda: FIXED_NOW,
        hosts=hosts,
    )
    return engine, out
