"""Every simulator module that imitates a real tool names where that behaviour comes from (the
simulator contract in docs/architecture.md): an upstream repository or document and its version,
so a reviewer can check the imitation against the real tool."""

from __future__ import annotations

import re
from pathlib import Path

LABSIM = Path(__file__).resolve().parent / "labsim"
# modules whose answers stand in for kubectl, istioctl, the API server, k3s, cloud-init, curl, EC2...
IMITATING = {
    "api.py",
    "aws.py",
    "egress.py",
    "cluster.py",
    "istio_install.py",
    "istioctl.py",
    "k3s.py",
    "kinds.py",
    "kubectl.py",
    "kubectl_watch.py",
    "moto_fixes.py",
    "netpol.py",
    "node_tools.py",
    "nodes.py",
    "printers.py",
    "release.py",
    "scheduling.py",
    "strategic.py",
    "webserver.py",
    "workloads.py",
}
# the simulator's own plumbing: settings, command log, process entry points, fixtures
PLUMBING = {"__init__.py", "__main__.py", "config.py", "fixtures.py", "log.py", "sim.py", "tool.py"}
SOURCE = re.compile(
    r"istio/istio|kubernetes/[a-z-]+|canonical/cloud-init|k3s-io/k3s|envoyproxy/envoy|spf13/pflag"
    r"|curl \d|sudo \d|systemd \d|RFC \d{4}|AWS CloudFormation|documentation\.ubuntu\.com"
)
VERSION = re.compile(r"\bv?\d+\.\d+\.\d+\b|\b1\.\d\d\b|ubuntu/[\w.~+-]+|RFC \d{4}|22\.04")


def test_every_module_is_classified() -> None:
    assert {p.name for p in LABSIM.glob("*.py")} == IMITATING | PLUMBING, (
        "new module: does it imitate a tool?"
    )


def test_every_imitating_module_names_its_upstream_source_and_version() -> None:
    missing = {
        name: [
            what for what, pattern in (("source", SOURCE), ("version", VERSION)) if not pattern.search(text)
        ]
        for name in sorted(IMITATING)
        if not (SOURCE.search(text := (LABSIM / name).read_text()) and VERSION.search(text))
    }
    assert missing == {}


def test_the_release_copies_name_the_release_file_they_stand_for() -> None:
    addons = LABSIM / "release" / "samples" / "addons"
    for path in sorted(addons.rglob("*.yaml")):
        first = path.read_text().splitlines()[0]
        assert f"istio/istio 1.23.2 samples/addons/{path.relative_to(addons)}" in first, path
