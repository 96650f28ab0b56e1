"""Which lines belong to one request, and how its hops join across proxies, as Envoy makes them.

- The client line: an outbound line of the client's sidecar for this request, at or after its start:
  HTTP by `:authority`; TLS by SNI, or, where the sidecar read no SNI, by the address the app
  connected to (DOWNSTREAM_LOCAL_ADDRESS is the original destination the iptables redirect keeps).
- To a gateway: the client line's UPSTREAM_HOST is the gateway pod's IP and port. TCP/TLS: the
  client line's UPSTREAM_LOCAL_ADDRESS is the gateway line's DOWNSTREAM_REMOTE_ADDRESS (the same
  connection seen from both ends); HTTP: both lines carry the same x-request-id.
- Inside a gateway: a line whose UPSTREAM_HOST is `envoy://LISTENER/` continues on that internal
  listener, in the same proxy's log; the internal connection carries no address of its own
  (`envoy://internal_client_address/`), so the continuation is the listener's line that started
  within the outer connection's lifetime, nearest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from lab.errors import LabError
from lab.trace.logline import AccessLine
from lab.trace.proxylog import ProxyLog

DEFAULT_PORTS = {"http": 80, "https": 443}
_SLACK = timedelta(seconds=1)  # START_TIME has millisecond precision and proxies flush separately


@dataclass(frozen=True)
class Target:
    """The request being traced."""

    url: str
    scheme: str
    host: str
    port: int
    remote_ip: str | None = None  # what curl connected to (-w %{remote_ip}), when known
    since: datetime | None = None  # the cluster's clock just before the request

    @classmethod
    def parse(cls, url: str, remote_ip: str | None = None, since: datetime | None = None) -> Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as error:
            raise LabError(f"bad URL {url!r}: {error}", "give a full http:// or https:// URL") from None
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise LabError(f"bad URL {url!r}", "give a full http:// or https:// URL")
        return cls(
            url, parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme], remote_ip, since
        )


@dataclass(frozen=True)
class Hop:
    proxy: str  # NAMESPACE/POD
    role: str  # client sidecar | gateway | internal listener
    line: AccessLine


def client_lines(client: ProxyLog, target: Target) -> list[AccessLine]:
    """The client sidecar's lines for this request, oldest first."""
    return [e for e in client.entries if _recent(e, target) and not e.inbound and _belongs(e, target)]


def _recent(entry: AccessLine, target: Target) -> bool:
    return target.since is None or entry.start_time >= target.since


def _belongs(entry: AccessLine, target: Target) -> bool:
    if target.scheme == "http":
        host, _, port = (entry.authority or "").lower().partition(":")
        return not entry.tcp and host == target.host and port in ("", str(target.port))
    if not entry.tcp:
        return False
    if entry.sni:
        return entry.sni.lower() == target.host
    return bool(target.remote_ip) and entry.downstream_local_address == f"{target.remote_ip}:{target.port}"


def gateway_of(line: AccessLine, gateways: list[ProxyLog]) -> ProxyLog | None:
    return next((g for g in gateways if g.answers(line.upstream_host)), None)


def gateway_hops(line: AccessLine, gateway: ProxyLog, target: Target) -> list[Hop]:
    """The gateway's lines joined to one client line (several when the client retried), each
    followed by its internal-listener continuation."""
    if line.tcp:
        joined = [
            e
            for e in gateway.entries
            if e.tcp
            and not e.internal
            and line.upstream_local_address
            and e.downstream_remote_address == line.upstream_local_address
        ]
    else:
        joined = [
            e for e in gateway.entries if not e.tcp and line.request_id and e.request_id == line.request_id
        ]
    hops: list[Hop] = []
    used: set[int] = set()
    for entry in sorted((e for e in joined if _recent(e, target)), key=lambda e: e.start_time):
        hops.append(Hop(gateway.proxy, "gateway", entry))
        inner = _continuation(entry, gateway, used)
        if inner is not None:
            hops.append(Hop(gateway.proxy, "internal listener", inner))
    return hops


def _continuation(outer: AccessLine, gateway: ProxyLog, used: set[int]) -> AccessLine | None:
    if not (outer.upstream_host or "").startswith("envoy://"):
        return None
    ends = outer.start_time + timedelta(milliseconds=outer.duration) + _SLACK
    inside = [
        (i, e)
        for i, e in enumerate(gateway.entries)
        if i not in used
        and e.internal
        and e.downstream_local_address == outer.upstream_host
        and outer.start_time - _SLACK <= e.start_time <= ends
    ]
    if not inside:
        return None
    index, entry = min(inside, key=lambda pair: abs(pair[1].start_time - outer.start_time))
    used.add(index)
    return entry
