"""One line of an `istio-proxy` container log, read field by field.

Known access-log shapes:
- Istio 1.23's default TEXT format (`EnvoyTextLogFormat` in istio/istio
  pilot/pkg/model/telemetry_logging.go at 1.23.2), written by every sidecar and gateway when access
  logging is on (demo profile: meshConfig.accessLogFile=/dev/stdout, or a Telemetry with provider envoy);
- the internal listener line the `egress-sni` EnvoyFilter adds (manifests/egress-sni/envoyfilter.yaml):
  the same field order with literal `-` where the default has HTTP-only fields.
Lines the proxy writes about itself (pilot-agent and Envoy's own log, both as
`<RFC3339>\\t<level>\\t...` in Istio's proxy image) are skipped. Anything else is an unknown line:
reported, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

DEFAULT_FORMAT = "istio-default"
INTERNAL_LISTENER_FORMAT = "envoyfilter-internal-listener"

_Q = r'"(?P<{}>[^"]*)"'  # a quoted field: Envoy's text format does not escape inside quotes
_S = r"(?P<{}>\S+)"
_N = r"(?P<{}>\d+|-)"

# (name, shape) in the order of EnvoyTextLogFormat; `request` is the quoted
# "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%".
_DEFAULT_FIELDS = (
    ("response_code", _N),
    ("response_flags", _S),
    ("response_code_details", _S),
    ("connection_termination_details", _S),
    ("upstream_transport_failure_reason", _Q),
    ("bytes_received", _N),
    ("bytes_sent", _N),
    ("duration", _N),
    ("upstream_service_time", _S),
    ("x_forwarded_for", _Q),
    ("user_agent", _Q),
    ("request_id", _Q),
    ("authority", _Q),
    ("upstream_host", _Q),
    ("upstream_cluster", _S),
    ("upstream_local_address", _S),
    ("downstream_local_address", _S),
    ("downstream_remote_address", _S),
    ("requested_server_name", _S),
    ("route_name", _S),
)
_HEAD = r'^\[(?P<start_time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>\S+)" '


def _shape(fields: tuple[tuple[str, str], ...]) -> re.Pattern[str]:
    return re.compile(_HEAD + " ".join(shape.format(name) for name, shape in fields) + r"$")


_DEFAULT = _shape(_DEFAULT_FIELDS)
# The EnvoyFilter's inline_string fixes these fields to `-`: a line that has anything else there
# was not written by that logger.
_INTERNAL_FIXED = {
    "method": "-",
    "path": "-",
    "protocol": "-",
    "response_code": "0",
    "response_code_details": "-",
    "connection_termination_details": "-",
    "upstream_service_time": "-",
    "x_forwarded_for": "-",
    "user_agent": "-",
    "request_id": "-",
    "authority": "-",
    "route_name": "-",
}
# `kubectl logs --timestamps` puts the kubelet's RFC 3339 (nanoseconds) stamp in front.
_KUBECTL_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ")
# pilot-agent (istio/istio pkg/log) and Envoy as configured by pilot-agent
# (`--log-format %Y-%m-%dT%T.%fZ\t%l\tenvoy %n %_\t%v`): RFC 3339, a tab, a level, a tab.
_PROXY_OWN = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\t(?:trace|debug|info|warn|warning|error|critical|fatal)\t"
)
# Envoy's own default log format, when a proxy runs without pilot-agent's --log-format.
_ENVOY_OWN = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\]\[\d+\]\[\w+\]\[[\w-]+\] ")


@dataclass(frozen=True)
class AccessLine:
    """One access-log entry; `None` where Envoy printed `-`."""

    format: str
    start_time: datetime
    method: str | None
    path: str | None
    protocol: str | None
    response_code: int
    response_flags: frozenset[str]
    response_code_details: str | None
    upstream_transport_failure_reason: str | None
    bytes_received: int
    bytes_sent: int
    duration: int
    request_id: str | None
    authority: str | None
    user_agent: str | None
    upstream_host: str | None
    upstream_cluster: str | None
    upstream_local_address: str | None
    downstream_local_address: str | None
    downstream_remote_address: str | None
    sni: str | None
    route_name: str | None
    raw: str

    @property
    def tcp(self) -> bool:
        """A TCP/TLS connection (`"- - -" 0`), not an HTTP request."""
        return self.method is None

    @property
    def inbound(self) -> bool:
        return (self.upstream_cluster or "").startswith("inbound|")

    @property
    def internal(self) -> bool:
        """Written by an internal listener (`envoy://NAME/` as its local address)."""
        return (self.downstream_local_address or "").startswith("envoy://")


@dataclass(frozen=True)
class UnknownLine:
    raw: str


Parsed = AccessLine | UnknownLine | None


def split_kubectl_stamp(text: str) -> tuple[datetime | None, str]:
    """(`kubectl logs --timestamps` stamp, the line as the container wrote it)."""
    match = _KUBECTL_STAMP.match(text)
    if not match:
        return None, text
    return parse_time(match.group(1)), text[match.end() :]


def parse_time(text: str) -> datetime | None:
    """RFC 3339 with any fraction (Envoy: milliseconds; kubelet: nanoseconds) as aware UTC."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if not match:
        return None
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    try:
        moment = datetime.fromisoformat(f"{match.group(1)}.{fraction}{zone}")
    except ValueError:
        return None
    return moment.astimezone(timezone.utc)


def parse_line(text: str) -> Parsed:
    """An AccessLine, an UnknownLine, or None for a blank line or the proxy's own log line."""
    _, line = split_kubectl_stamp(text.rstrip("\r\n"))
    if not line.strip() or _PROXY_OWN.match(line) or _ENVOY_OWN.match(line):
        return None
    match = _DEFAULT.match(line.strip())
    start = parse_time(match.group("start_time")) if match else None
    if not match or start is None:
        return UnknownLine(line)
    fields = match.groupdict()
    internal = all(fields[name] == value for name, value in _INTERNAL_FIXED.items()) and fields[
        "downstream_local_address"
    ].startswith("envoy://")
    return _build(fields, start, INTERNAL_LISTENER_FORMAT if internal else DEFAULT_FORMAT, line.strip())


def _build(fields: dict[str, str], start: datetime, fmt: str, raw: str) -> AccessLine:
    def text(name: str) -> str | None:
        value = fields[name]
        return None if value in ("-", "") else value

    def number(name: str) -> int:
        value = fields[name]
        return int(value) if value.isdigit() else 0

    flags = text("response_flags")
    return AccessLine(
        format=fmt,
        start_time=start,
        method=text("method"),
        path=text("path"),
        protocol=text("protocol"),
        response_code=number("response_code"),
        response_flags=frozenset(flags.split(",")) if flags else frozenset(),
        response_code_details=text("response_code_details"),
        upstream_transport_failure_reason=text("upstream_transport_failure_reason"),
        bytes_received=number("bytes_received"),
        bytes_sent=number("bytes_sent"),
        duration=number("duration"),
        request_id=text("request_id"),
        authority=text("authority"),
        user_agent=text("user_agent"),
        upstream_host=text("upstream_host"),
        upstream_cluster=text("upstream_cluster"),
        upstream_local_address=text("upstream_local_address"),
        downstream_local_address=text("downstream_local_address"),
        downstream_remote_address=text("downstream_remote_address"),
        sni=text("requested_server_name"),
        route_name=text("route_name"),
        raw=raw,
    )
