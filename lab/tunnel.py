"""A local port forwarded over an SSH transport (`ssh -L`), with failures as one line each.

fabric's `forward_local` binds the local port in a thread of its own: a busy port shows only as a
ThreadException when the tunnel closes, after the URL was printed as if it worked. Here the port
is bound before anything is printed, and a lost SSH connection ends the wait with a LabError.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko

from lab.errors import LabError, UsageError

LOCAL_HOST = "127.0.0.1"
_CHUNK = 32 * 1024
_LIVENESS = 0.5  # seconds between looks at the SSH transport while nobody connects


def parse_port(value: object, flag: str = "--port") -> int:
    """A local port from the command line: 0 (pick a free one) to 65535."""
    text = str(value).strip()
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise UsageError(
            f"{flag} {value!r} is not a port number", f"pass {flag} 1-65535, or {flag} 0 for a free one"
        )
    return int(text)


def listen(port: int) -> socket.socket:
    """Bind the local end now: a busy port is the user's to fix, named with the process that holds it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.bind((LOCAL_HOST, port))
    except OSError as error:
        server.close()
        if error.errno != errno.EADDRINUSE:
            raise LabError(
                f"cannot listen on {LOCAL_HOST}:{port}: {error.strerror}", "pass another --port"
            ) from None
        raise UsageError(
            f"local port {port} is already in use by {holder(port)}",
            "stop it, pass another --port, or --port 0 to pick a free one",
        ) from None
    server.listen(16)
    return server


def holder(port: int) -> str:
    """Which process listens on the port, from /proc (Linux); a generic phrase elsewhere."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for pid in (p for p in os.listdir("/proc") if p.isdigit()) if inodes else ():
        if _links(pid) & inodes:
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                raw = b""
            command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
            return f"process {pid} ({command[:60]})" if command else f"process {pid}"
    return f"another process (`ss -ltnp 'sport = :{port}'` shows which)"


def _links(pid: str) -> set[str]:
    """What the process's open file descriptors point at; empty for a process gone or not ours."""
    links: set[str] = set()
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return links
    for fd in descriptors:
        try:
            links.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed meanwhile (listdir's own descriptor, for one)
            continue
    return links


class Tunnel:
    """Forward connections to `server` over `transport` to remote_host:remote_port until stopped."""

    def __init__(
        self,
        server: socket.socket,
        transport: paramiko.Transport,
        remote_host: str,
        remote_port: int,
        on_problem: Callable[[str], None],
    ) -> None:
        self.server, self.transport = server, transport
        self.remote = (remote_host, remote_port)
        self.on_problem = on_problem
        self.closed = threading.Event()
        self.failure: str | None = None
        self._said: set[str] = set()

    @property
    def port(self) -> int:
        return self.server.getsockname()[1]

    def start(self) -> None:
        threading.Thread(target=self._accept, name="tunnel-accept", daemon=True).start()

    def wait(self) -> None:
        """Until stop() or the SSH connection is lost (then a LabError)."""
        self.closed.wait()
        if self.failure:
            raise LabError(self.failure, "run `invoke kiali` again once the node answers SSH")

    def stop(self) -> None:
        self.closed.set()
        self.server.close()

    def _accept(self) -> None:
        while not self.closed.is_set():
            if not self.transport.is_active():
                self.failure = "the SSH connection of the tunnel was lost"
                self.closed.set()
                return
            try:
                ready, _, _ = select.select([self.server], [], [], _LIVENESS)
                if ready:
                    client, source = self.server.accept()
                    threading.Thread(target=self._serve, args=(client, source), daemon=True).start()
            except OSError:  # the listening socket was closed by stop()
                return

    def _serve(self, client: socket.socket, source: tuple[str, int]) -> None:
        try:
            channel = self.transport.open_channel("direct-tcpip", self.remote, source)
        except (paramiko.SSHException, OSError) as error:
            self._problem(
                f"the node could not open a connection to {self.remote[0]}:{self.remote[1]}: {error}"
            )
            client.close()
            return
        try:
            _pump(client, channel, self.closed)
        except (OSError, paramiko.SSHException):  # either end went away: this connection is over
            pass
        finally:
            channel.close()
            client.close()

    def _problem(self, message: str) -> None:
        if message not in self._said:  # one line per kind of failure, not one per browser request
            self._said.add(message)
            self.on_problem(message)


def _pump(client: socket.socket, channel: paramiko.Channel, closed: threading.Event) -> None:
    while not closed.is_set():
        ready, _, _ = select.select([client, channel], [], [], _LIVENESS)
        for end in ready:
            data = end.recv(_CHUNK)
            if not data:
                return
            (channel if end is client else client).sendall(data)
