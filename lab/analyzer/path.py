"""A request's path: the hops it takes and, at each, the steps and who decided them."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from lab.errors import LabError

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Request:
    url: str
    scheme: str
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    def dropped(self, flag: str) -> str:
        """What the client sees when a proxy drops this request with Envoy response flag `flag`.

        An HTTP listener answers with a local reply (503 and the flag, e.g. NR, UH); a TLS or TCP
        connection has no HTTP to answer with: the proxy closes it, curl reports the failed
        handshake as exit 35 ("command terminated with exit code 35" through kubectl exec).
        """
        if self.tls:
            return f"the TLS client sees the connection reset, curl exits 35 (access log {flag})"
        return f"the HTTP client gets a 503 ({flag})"


@dataclass(frozen=True)
class Step:
    what: str  # listener, route, cluster, endpoints, server, filter chain, upstream
    value: str
    decided_by: str  # the resource (or mesh setting) that decided it
    why: str


@dataclass
class Hop:
    proxy: str  # "client sidecar", "egress gateway", "internal listener", "upstream"
    where: str
    steps: list[Step] = field(default_factory=list)

    def add(self, what: str, value: str, decided_by: str, why: str) -> None:
        self.steps.append(Step(what, value, decided_by, why))


@dataclass
class Path:
    source: str
    request: Request
    policy: str
    hops: list[Hop] = field(default_factory=list)
    outcome: str = ""
    reached: bool = False
    verdict: str = ""  # one of lab.verdicts.PREDICTED: the answer `invoke trace` would observe


def parse_url(url: str) -> Request:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when it is not a number
    except ValueError as error:
        raise LabError(f"bad URL {url!r}: {error}") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise LabError(f"bad URL {url!r}", "give a full http:// or https:// URL")
    return Request(url, parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme])
