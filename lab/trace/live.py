"""The trace against a running lab: who the proxies are, the request, their logs since it began.

Gateways are discovered from the cluster, never from a list: every pod whose `istio-proxy` runs as
a router (`proxy router`, the args of Istio's gateway injection template and of the demo gateways)
is a gateway proxy.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lab.errors import LabError
from lab.scenario.cluster_state import ClusterLike, cluster_time, read_mesh
from lab.trace.join import Target
from lab.trace.logline import parse_time
from lab.trace.proxylog import CLIENT, GATEWAY, ProxyLog, since, window_start
from lab.trace.verdict import Trace, trace
from lab.waiting import Timeout, wait_until

PROXY = "istio-proxy"
# `%{stderr}` switches curl's --write-out to stderr (curl 7.63+), so the app's stdout is unchanged.
REMOTE_IP_MARK = "lab-remote-ip="
_REMOTE_IP = re.compile(rf"^{re.escape(REMOTE_IP_MARK)}(\S*)$", re.MULTILINE)
SETTLE_SECONDS = 10.0  # Envoy flushes access logs every second (access_log_flush_interval)
LOG_TIMEOUT = 60.0


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    ip: str | None
    has_sidecar: bool
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def proxy(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Proxies:
    client: Pod
    gateways: tuple[Pod, ...]


def discover(cluster: ClusterLike, namespace: str, pod: str) -> Proxies:
    items = cluster.kubectl_json("get", "pods", "-A").get("items", [])
    pods = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p
        for p in items
        if (p.get("metadata") or {}).get("namespace") and p["metadata"].get("name")
    }
    client = pods.get((namespace, pod))
    if client is None:
        known = ", ".join(sorted(f"{n}/{p}" for n, p in pods if n == "default")) or "none"
        raise LabError(f"no pod {namespace}/{pod} in the lab", f"pods in default: {known}")
    gateways = tuple(_pod(p) for key, p in sorted(pods.items()) if key != (namespace, pod) and _is_gateway(p))
    return Proxies(_pod(client), gateways)


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list((pod.get("spec") or {}).get("containers") or [])


def _is_gateway(pod: dict[str, Any]) -> bool:
    return any(c.get("name") == PROXY and "router" in (c.get("args") or []) for c in _containers(pod))


def _pod(pod: dict[str, Any]) -> Pod:
    meta = pod["metadata"]
    return Pod(
        meta["namespace"],
        meta["name"],
        (pod.get("status") or {}).get("podIP") or None,
        any(c.get("name") == PROXY for c in _containers(pod)),
        tuple(sorted((meta.get("labels") or {}).items())),
        tuple(sorted((meta.get("annotations") or {}).items())),
    )


# Pod annotations that send traffic around the sidecar (istio/istio 1.23.2
# pkg/config/annotation: traffic.sidecar.istio.io/*), read by istio-init's iptables rules.
BYPASS_ANNOTATIONS = (
    "traffic.sidecar.istio.io/excludeOutboundIPRanges",
    "traffic.sidecar.istio.io/excludeOutboundPorts",
    "traffic.sidecar.istio.io/includeOutboundIPRanges",
)


def no_evidence_hints(cluster: ClusterLike, client: Pod) -> list[str]:
    """What the cluster says about a request its client's sidecar did not log."""
    hints = [
        f"{client.proxy} has {key}={value!r}: that traffic may bypass the sidecar"
        for key, value in client.annotations
        if key in BYPASS_ANNOTATIONS and value != ("*" if key.endswith("includeOutboundIPRanges") else "")
    ]
    try:
        mesh = read_mesh(cluster)
        telemetries = cluster.kubectl_json("get", "telemetries.telemetry.istio.io", "-A").get("items", [])
    except LabError:
        return hints
    logging = [t for t in telemetries if (t.get("spec") or {}).get("accessLogging")]
    if "accessLogFile" not in mesh and not logging:
        hints.append("access logging is off: no meshConfig.accessLogFile and no Telemetry with accessLogging")
    return hints


def start_time(cluster: ClusterLike) -> datetime:
    moment = parse_time(cluster_time(cluster))
    if moment is None:  # cluster_time already checked the shape
        raise LabError("cannot read the cluster's clock")
    return moment


def with_remote_ip(command: list[str]) -> list[str]:
    """A curl command that also writes the IP it connected to on stderr; other commands unchanged."""
    if not command or command[0].rsplit("/", 1)[-1] != "curl":
        return list(command)
    mark = f"%{{stderr}}{REMOTE_IP_MARK}%{{remote_ip}}\\n"
    out = list(command)
    for index, word in enumerate(out):
        if word in ("-w", "--write-out") and index + 1 < len(out):
            out[index + 1] += mark
            return out
        if word.startswith("--write-out="):
            out[index] += mark
            return out
    return [out[0], "-w", mark, *out[1:]]


def curl_url(command: tuple[str, ...] | list[str]) -> str:
    """The URL a curl command requests (the last word with a scheme)."""
    urls = [word for word in command[1:] if "://" in word]
    if not urls:
        raise LabError(f"no URL in {' '.join(command)[:80]!r}", "the path is traced for `curl ... URL`")
    return urls[-1]


def remote_ip(stderr: str) -> tuple[str | None, str]:
    """(the IP curl connected to, stderr without the line that said it)."""
    found = _REMOTE_IP.findall(stderr)
    rest = _REMOTE_IP.sub("", stderr).replace("\n\n", "\n").lstrip("\n")
    return (found[-1] or None) if found else None, rest


def read(cluster: ClusterLike, pod: Pod, role: str, start: datetime) -> ProxyLog:
    if not pod.has_sidecar:
        log = ProxyLog(pod.proxy, role, ip=pod.ip)
        log.has_sidecar = False
        return log
    answer = cluster.kubectl(
        "logs",
        "-n",
        pod.namespace,
        pod.name,
        "-c",
        PROXY,
        f"--since-time={window_start(start)}",
        "--timestamps",
        "--tail=-1",
        check=False,
        timeout=LOG_TIMEOUT,
    )
    if not answer.ok:
        raise LabError(
            f"kubectl logs {pod.proxy} -c {PROXY} failed: {(answer.stderr or answer.stdout).strip()[-200:]}"
        )
    return ProxyLog.read(pod.proxy, role, since(answer.stdout, start), ip=pod.ip)


def read_all(cluster: ClusterLike, proxies: Proxies, start: datetime) -> tuple[ProxyLog, list[ProxyLog]]:
    client = read(cluster, proxies.client, CLIENT, start)
    return client, [read(cluster, g, GATEWAY, start) for g in proxies.gateways]


def settle(
    cluster: ClusterLike, proxies: Proxies, target: Target, seconds: float = SETTLE_SECONDS
) -> tuple[Trace, ProxyLog, list[ProxyLog]]:
    """Trace from the logs, re-reading them while the verdict could still change (a proxy flushes
    its access log once a second), for at most `seconds`."""
    assert target.since is not None
    latest: list[Any] = []

    def attempt() -> bool:
        client, gateways = read_all(cluster, proxies, target.since)  # type: ignore[arg-type]
        latest[:] = [trace(client, gateways, target), client, gateways]
        return latest[0].complete

    # The first read counts: a verdict that stays incomplete until the deadline is the answer.
    with contextlib.suppress(Timeout):
        wait_until(attempt, timeout=seconds, what="the request's access-log lines", first=0.5, interval=1.0)
    if not latest:
        attempt()
    return latest[0], latest[1], latest[2]
