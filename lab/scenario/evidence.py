"""The evidence folder of a failed scenario: what a person needs to see where the request went.

Every item is best effort: a command that fails is noted in `errors.txt` and the rest still run,
because evidence is gathered exactly when something is already wrong.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from lab.errors import LabError
from lab.nodes import CommandResult
from lab.scenario.cluster_state import ClusterLike
from lab.scenario.model import Scenario
from lab.trace import live
from lab.trace.logline import parse_time
from lab.trace.proxylog import since as lines_since
from lab.trace.proxylog import window_start

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
    # The logs in the layout `invoke trace --logs` reads: NAMESPACE.POD.log for the client and for
    # every gateway proxy in the cluster.
    try:
        proxies = [(client.namespace, client.pod)] + [
            (g.namespace, g.name) for g in live.discover(cluster, client.namespace, client.pod).gateways
        ]
    except LabError as error:
        problems.append(f"gateway proxies: {error}")
        proxies = [(client.namespace, client.pod)]
    start = parse_time(since)
    for namespace, pod in proxies:
        save(
            f"{namespace}.{pod}.log",
            lambda n=namespace, p=pod: _windowed(
                cluster.kubectl(*_logs(n, [p], since), check=False, timeout=TIMEOUT), start
            ),
        )
    _proxy_config(cluster, save, "client", f"{client.pod}.{client.namespace}")
    for gateway in scenario.gateways:
        slug = "gateway-" + re.sub(
            r"[^a-z0-9]+", "-", f"{gateway.namespace}-{gateway.selector}".lower()
        ).strip("-")
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
    # Whole seconds reach the kubelet: ask a second earlier, then keep lines by their own stamp.
    start = parse_time(since)
    window = window_start(start) if start else since
    return [
        "logs",
        "-n",
        namespace,
        *source,
        "-c",
        "istio-proxy",
        f"--since-time={window}",
        "--timestamps",
        "--tail=-1",
    ]


def _windowed(result: CommandResult, start: datetime | None) -> CommandResult:
    if start is None or not result.ok:
        return result
    return dataclasses.replace(result, stdout=lines_since(result.stdout, start))


def _proxy_config(cluster: ClusterLike, save: Callable[..., None], prefix: str, pod: str) -> None:
    for what in PROXY_CONFIG:
        save(
            f"{prefix}-{what}.json",
            lambda w=what: cluster.istioctl(
                "proxy-config", w, pod, "-o", "json", check=False, timeout=TIMEOUT
            ),
        )
