"""A proxy's log as the trace reads it: the access lines, the unknown lines, and the log window.

`kubectl logs --since-time` sends the time to the API server with second precision (RFC 3339, the
fraction dropped: `sinceTime` is a metav1.Time in k8s.io/api core/v1 PodLogOptions), so a read
"since this request began" asks from a second earlier and keeps the lines whose own timestamp
(`--timestamps`, the kubelet's) is at or after the start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from lab.trace.logline import AccessLine, UnknownLine, parse_line, split_kubectl_stamp

CLIENT, GATEWAY = "client", "gateway"


@dataclass
class ProxyLog:
    proxy: str  # NAMESPACE/POD
    role: str  # client | gateway
    entries: list[AccessLine] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    ip: str | None = None  # the pod's IP, when the cluster told us
    has_sidecar: bool = True
    text: str = ""  # what was read, for saving in the `--logs` layout

    @classmethod
    def read(cls, proxy: str, role: str, text: str, ip: str | None = None) -> ProxyLog:
        log = cls(proxy, role, ip=ip, text=text)
        for raw in text.splitlines():
            parsed = parse_line(raw)
            if isinstance(parsed, AccessLine):
                log.entries.append(parsed)
            elif isinstance(parsed, UnknownLine):
                log.unknown.append(parsed.raw)
        return log

    @property
    def addresses(self) -> set[str]:
        """IP:port pairs this proxy listens on, as its own lines show (DOWNSTREAM_LOCAL_ADDRESS)."""
        return {
            e.downstream_local_address for e in self.entries if e.downstream_local_address and not e.internal
        }

    def answers(self, upstream_host: str | None) -> bool:
        """Whether a peer's UPSTREAM_HOST names this proxy's pod."""
        if not upstream_host:
            return False
        return upstream_host.rpartition(":")[0] == self.ip or upstream_host in self.addresses


def window_start(start: datetime) -> str:
    """The `--since-time` to ask for: a whole second, at least one second before `start`."""
    earlier = start.astimezone(timezone.utc) - timedelta(seconds=1)
    return earlier.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def since(text: str, start: datetime) -> str:
    """The lines of a `kubectl logs --timestamps` answer stamped at or after `start`, stamps removed.

    A line without a stamp (a tool that ignores --timestamps) is kept: nothing says it is older."""
    kept = []
    for raw in text.splitlines():
        stamp, line = split_kubectl_stamp(raw)
        if stamp is None or stamp >= start:
            kept.append(line)
    return "\n".join(kept) + ("\n" if kept else "")
