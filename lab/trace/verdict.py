"""The verdict for one request, from its hops: which way it really went, in one sentence."""

from __future__ import annotations

from dataclasses import dataclass, field

from lab import verdicts
from lab.trace.join import Hop, Target, client_lines, gateway_hops, gateway_of
from lab.trace.logline import AccessLine
from lab.trace.proxylog import ProxyLog

PASSTHROUGH_CLUSTER, BLACKHOLE_CLUSTER, BLOCK_ALL = "PassthroughCluster", "BlackHoleCluster", "block_all"
# Envoy response flags that mean the upstream connection or request failed
# (envoyproxy.io docs: configuration/observability/access_log/usage, %RESPONSE_FLAGS%).
# What a trace can say: the observed verdicts, and `dropped` when the client's sidecar sent the
# request to a gateway whose log shows no line going on.
TRACE_VERDICTS = (*verdicts.OBSERVED, verdicts.DROPPED)
UPSTREAM_FAILURE_FLAGS = frozenset({"UF", "UH", "UO", "URX", "UT", "UC", "UMSDR", "UPE", "NC", "DF"})


@dataclass
class Trace:
    target: Target
    client: str
    verdict: str
    sentence: str
    hops: list[Hop] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)  # (proxy, raw line)
    predicted: str | None = None
    predicted_by: str = "explain"

    @property
    def gateways(self) -> list[str]:
        """NAMESPACE/POD of each gateway that handled it, in order, each once."""
        seen: list[str] = []
        for hop in self.hops:
            if hop.role != "client sidecar" and hop.proxy not in seen:
                seen.append(hop.proxy)
        return seen

    @property
    def complete(self) -> bool:
        """Whether more log lines could still change the verdict (proxies flush their logs every second)."""
        return self.verdict not in (verdicts.NO_EVIDENCE, verdicts.DROPPED)


def trace(client: ProxyLog, gateways: list[ProxyLog], target: Target) -> Trace:
    unknown = [(log.proxy, raw) for log in [client, *gateways] for raw in log.unknown]
    lines = client_lines(client, target)
    if not lines:
        result = Trace(target, client.proxy, verdicts.NO_EVIDENCE, _no_evidence(client, target))
        result.unknown = unknown
        return result
    line = lines[-1]
    result = _follow(client, gateways, target, line)
    result.unknown = unknown
    if len(lines) > 1:
        result.notes.append(
            f"{len(lines)} lines of {client.proxy}'s sidecar match this request since it began; "
            "the last one is traced"
        )
    return result


def _follow(client: ProxyLog, gateways: list[ProxyLog], target: Target, line: AccessLine) -> Trace:
    first = Hop(client.proxy, "client sidecar", line)
    cluster = line.upstream_cluster or ""

    def done(verdict: str, sentence: str, hops: list[Hop] | None = None) -> Trace:
        return Trace(target, client.proxy, verdict, sentence, [first, *(hops or [])])

    if cluster == BLACKHOLE_CLUSTER or line.route_name == BLOCK_ALL:
        how = (
            "BlackHoleCluster"
            if cluster == BLACKHOLE_CLUSTER
            else f"route {BLOCK_ALL} ({line.response_code})"
        )
        return done(verdicts.BLACKHOLE, f"the mesh refused it: {client.proxy}'s sidecar sent it to {how}")
    if cluster == PASSTHROUGH_CLUSTER:
        return done(
            verdicts.PASSTHROUGH,
            f"{client.proxy}'s sidecar sent it straight out through PassthroughCluster to "
            f"{line.upstream_host or 'the original destination'}; no gateway saw it",
        )
    gateway = gateway_of(line, gateways)
    if gateway is None:
        if cluster.endswith(".svc.cluster.local"):
            result = done(
                verdicts.NO_EVIDENCE,
                f"{client.proxy}'s sidecar sent it to {line.upstream_host} ({cluster}), "
                "a proxy whose log was not read",
            )
            result.notes.append("add that proxy's log (offline: NAMESPACE.POD.log) to follow the next hop")
            return result
        return done(
            verdicts.DIRECT,
            f"{client.proxy}'s sidecar sent it straight to {line.upstream_host} through {cluster or 'no cluster'}, "
            "without a gateway",
        )
    hops = gateway_hops(line, gateway, target)
    if not hops:
        key = "x-request-id" if not line.tcp else f"DOWNSTREAM_REMOTE_ADDRESS {line.upstream_local_address}"
        result = done(
            verdicts.DROPPED,
            f"{client.proxy}'s sidecar sent it to gateway {gateway.proxy} ({line.upstream_host}), "
            f"but no line of that gateway's log joins it ({key})",
        )
        result.notes.append("the gateway dropped it, or its access log is off or not flushed yet")
        return result
    last = hops[-1].line
    out = last.upstream_cluster or ""
    if not out or (last.upstream_host or "").startswith("envoy://"):
        why = ",".join(sorted(last.response_flags)) or "no upstream"
        return done(
            verdicts.DROPPED,
            f"it reached gateway {gateway.proxy}, which did not send it on ({why})",
            hops,
        )
    result = done(
        verdicts.EGRESS_GATEWAY,
        f"{client.proxy}'s sidecar sent it to egress gateway {gateway.proxy}, which sent it on "
        f"to {last.upstream_host or '?'} through {out}",
        hops,
    )
    failed = last.response_flags & UPSTREAM_FAILURE_FLAGS
    if failed or last.response_code >= 500:
        flags = ",".join(sorted(failed)) or f"status {last.response_code}"
        result.sentence += f"; the upstream then failed ({flags})"
    if len([h for h in hops if h.role == "gateway"]) > 1:
        result.notes.append(f"{len(hops)} gateway lines join this request: the client retried")
    return result


def _no_evidence(client: ProxyLog, target: Target) -> str:
    if not client.has_sidecar:
        return f"{client.proxy} has no istio-proxy container: the request bypassed the mesh"
    if not client.entries:
        return (
            f"{client.proxy}'s sidecar logged no request at all since it began: access logging "
            "looks off (meshConfig.accessLogFile or a Telemetry), or the traffic bypassed the sidecar"
        )
    hint = (
        ""
        if target.remote_ip or target.scheme == "http"
        else " (give --remote-ip: a line without SNI names only the IP)"
    )
    return (
        f"{client.proxy}'s sidecar logged other requests but none for {target.host}:{target.port}: "
        f"the request bypassed the sidecar (an excluded IP range or port?){hint}"
    )
