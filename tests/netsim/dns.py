"""A loopback DNS server that answers A queries from a fixed table and records every question.

Wire format and UDP serving come from dnslib; what it answers is only what the test configured:
a name in the table gets its A record, any other name NXDOMAIN, so a resolver that asks for a
name the test did not expect gets an honest "no such name", as a real server would say it.
"""

from __future__ import annotations

import threading
from types import TracebackType

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import DNSLogger, DNSServer


class _Table:
    def __init__(self, records: dict[str, str], asked: list[tuple[str, str]], lock: threading.Lock):
        self._records = {name.rstrip(".").lower(): address for name, address in records.items()}
        self._asked = asked
        self._lock = lock

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        with self._lock:
            self._asked.append((name, kind))
        address = self._records.get(name)
        if address is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif kind == "A":
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=60))
        # A known name asked for another type (AAAA) gets an empty NOERROR answer: it exists, has no such record.
        return reply


class LoopbackDns:
    """`with LoopbackDns("127.1.2.3", {"en.wikipedia.org": "127.4.5.6"}) as dns:` serves UDP port 53."""

    def __init__(self, address: str, records: dict[str, str], port: int = 53):
        self.address, self.port = address, port
        self._asked: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = DNSServer(
            _Table(records, self._asked, self._lock),
            address=address,
            port=port,
            logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False),
        )

    def asked(self) -> list[tuple[str, str]]:
        """(name, type) of every question so far, in order."""
        with self._lock:
            return list(self._asked)

    def forget(self) -> None:
        with self._lock:
            self._asked.clear()

    def __enter__(self) -> LoopbackDns:
        self._server.start_thread()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.server.shutdown()
        self._server.server.server_close()
