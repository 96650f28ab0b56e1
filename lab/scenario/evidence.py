"""The evidence folder of a failed scenario: what a person needs to see where the request went.

Every item is best effort: a command that fails is noted in `errors.txt` and the rest still run,
because evidence is gathered exactly when something is already wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from lab.errors import LabError
from lab.nodes import CommandResult
from lab.scenario.cluster_state import ClusterLike
from lab.scenario.model import Scenario

PROXY_CONFIG = ("listeners", "clusters", "endpoints")
TIMEOUT = 60.0


def collect(cluster: ClusterLike, scenario: Scenario, folder: Path, since: str) -> list[str]:
    """Write the evidence files into `folder`; return their names."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    problems: list[str] = []

    def save(name: str, run: Callable[[], CommandResult]) -> None:
        try:
            result = run()
        except LabError as error:
            problems.append(f"{name}: {error}")
            return
        if not result.ok and not result.stdout.strip():
            problems.append(f"{name}: exit code {result.exit_code}: {result.stderr.strip()[-300:]}")
            return
        (folder / name).write_text(result.stdout)
        written.append(name)

    client = scenario.client
    save(
        "client-sidecar.log",
        lambda: cluster.kubectl(*_logs(client.namespace, [client.pod], since), check=False, timeout=TIMEOUT),
    )
    _proxy_config(cluster, save, "client", f"{client.pod}.{client.namespace}")
    for gateway in scenario.gateways:
        slug = "gateway-" + re.sub(
            r"[^a-z0-9]+", "-", f"{gateway.namespace}-{gateway.selector}".lower()
        ).strip("-")
        save(
            f"{slug}.log",
            lambda g=gateway: cluster.kubectl(
                *_logs(g.namespace, ["-l", g.selector], since), check=False, timeout=TIMEOUT
            ),
        )
        try:
            pods = cluster.kubectl_json("get", "pods", "-n", gateway.namespace, "-l", gateway.selector)
        except LabError as error:
            problems.append(f"{slug} pods: {error}")
            continue
        names = [p["metadata"]["name"] for p in pods.get("items", [])]
        if not names:
            problems.append(f"{slug}: no pod matches {gateway.selector} in {gateway.namespace}")
            continue
        _proxy_config(cluster, save, slug, f"{names[0]}.{gateway.namespace}")
    save(
        "istioctl-analyze.json",
        lambda: cluster.istioctl("analyze", "-A", "-o", "json", check=False, timeout=TIMEOUT),
    )
    if problems:
        (folder / "errors.txt").write_text("\n".join(problems) + "\n")
        written.append("errors.txt")
    return written


def _logs(namespace: str, source: list[str], since: str) -> list[str]:
    return ["logs", "-n", namespace, *source, "-c", "istio-proxy", f"--since-time={since}", "--tail=-1"]


def _proxy_config(cluster: ClusterLike, save: Callable[..., None], prefix: str, pod: str) -> None:
    for what in PROXY_CONFIG:
        save(
            f"{prefix}-{what}.json",
            lambda w=what: cluster.istioctl(
                "proxy-config", w, pod, "-o", "json", check=False, timeout=TIMEOUT
            ),
        )
