"""The remote nodes: SSH (fabric) with pinned host keys, retries while they boot, parallel runs.

Host keys are trusted on first contact and recorded in `.lab/<name>/known_hosts`; any later
mismatch is a hard error. Transport failures (a node rebooting, sshd restarting) are retried by
reconnecting and re-running the command: every command we send is idempotent.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import paramiko
from fabric import Connection
from invoke.exceptions import CommandTimedOut
from paramiko.ssh_exception import (
    AuthenticationException,
    BadHostKeyException,
    NoValidConnectionsError,
    SSHException,
)

from lab.errors import LabError, RemoteCommandError
from lab.waiting import STOP, Interrupted, interrupt, retrying, wait_until

T = TypeVar("T")
# What a booting or restarting node does to a connection; anything else is a real error.
TRANSPORT_ERRORS = (NoValidConnectionsError, ConnectionError, socket.timeout, EOFError, SSHException)
CONNECT_TIMEOUT = 5.0
# cloud-init installs the key early in boot, but sshd may answer before it has: refusals of our
# key are "not yet" for this long after the first attempt, then a real error.
AUTH_GRACE = 60.0


class HostKeyMismatch(LabError):
    """The node's host key is not the one recorded at first contact."""


@dataclass
class CommandResult:
    node: str
    command: str
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class _RecordFirstKey(paramiko.MissingHostKeyPolicy):
    """Trust on first use: record the key in our own known_hosts file, never the user's."""

    def __init__(self, known_hosts: Path, lock: threading.Lock) -> None:
        self.known_hosts = known_hosts
        self.lock = lock

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        with self.lock:
            keys = paramiko.HostKeys()
            if self.known_hosts.exists():
                keys.load(str(self.known_hosts))
            keys.add(hostname, key.get_name(), key)
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            keys.save(str(self.known_hosts))
            self.known_hosts.chmod(0o600)


_KNOWN_HOSTS_LOCK = threading.Lock()


class _WholeInput(io.StringIO):
    """Invoke reads a non-terminal stdin one byte per 10 ms (1 KiB of YAML took 10 s): hand it
    large chunks instead."""

    def read(self, size: int | None = -1) -> str:
        return super().read(64 * 1024)


class Node:
    """One lab host reachable over SSH."""

    def __init__(
        self,
        name: str,
        address: str,
        *,
        user: str,
        port: int,
        key_file: Path,
        known_hosts: Path,
        connect_deadline: float = 600.0,
        auth_grace: float = AUTH_GRACE,
    ) -> None:
        self.name = name
        self.address = address
        self.user = user
        self.port = port
        self.key_file = key_file
        self.known_hosts = known_hosts
        self.connect_deadline = connect_deadline
        self.auth_grace = auth_grace
        self._key: paramiko.PKey | None = None
        self._connection: Connection | None = None
        # `up` runs steps side by side on one connection per node: one thread (re)connects at a time.
        self._connecting = threading.Lock()

    def __repr__(self) -> str:
        return f"Node({self.name}@{self.address}:{self.port})"

    # -- connecting --------------------------------------------------------------------------
    def _open(self) -> Connection:
        connection = Connection(
            self.address,
            user=self.user,
            port=self.port,
            connect_timeout=CONNECT_TIMEOUT,
            connect_kwargs={
                "pkey": self._key,
                "look_for_keys": False,
                "allow_agent": False,
                "banner_timeout": CONNECT_TIMEOUT,
                "auth_timeout": CONNECT_TIMEOUT,
            },
        )
        client = connection.client
        client.get_host_keys().clear()
        if self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(_RecordFirstKey(self.known_hosts, _KNOWN_HOSTS_LOCK))
        try:
            connection.open()
        except BadHostKeyException as error:
            connection.close()
            raise HostKeyMismatch(
                f"{self.name} ({self.address}) presented a different SSH host key than at first "
                f"contact ({error.key.get_name()} {error.key.get_base64()[:16]}…)",
                f"if the node was really replaced, remove its line from {self.known_hosts}; "
                "otherwise do not connect: someone may be intercepting the connection",
            ) from None
        return connection

    def _load_key(self) -> paramiko.PKey:
        """Read the private key once, here: a bad file is the user's to fix, not a boot to wait out."""
        if not self.key_file.is_file():
            raise LabError(
                f"the lab's private key {self.key_file} is missing", "restore it, or pass --key-file"
            )
        try:
            return paramiko.PKey.from_path(self.key_file)
        except (SSHException, OSError, ValueError) as error:
            raise LabError(
                f"cannot read the private key {self.key_file}: {error}",
                "pass an unencrypted OpenSSH or PEM private key",
            ) from None

    def connect(self, on_wait: Callable[[str], None] | None = None) -> None:
        """Connect, retrying while the node boots, until the connect deadline."""
        with self._connecting:
            self._connect(on_wait)

    def _connect(self, on_wait: Callable[[str], None] | None) -> None:
        if self._connection is not None and self._connection.is_connected:
            return
        self._key = self._key or self._load_key()
        started = time.monotonic()

        def attempt() -> Connection:
            try:
                return self._open()
            except AuthenticationException:
                if time.monotonic() - started < self.auth_grace:
                    raise
                raise LabError(
                    f"{self.name} ({self.address}) refused the key {self.key_file}",
                    "check that --key-file is the private key of the lab's key pair",
                ) from None

        self._connection = wait_until(
            attempt,
            timeout=self.connect_deadline,
            # A refused connection answers at once, so polling fast costs nothing; while the
            # instance is still booting each attempt waits CONNECT_TIMEOUT anyway.
            interval=0.5,
            what=f"SSH on {self.name} ({self.address}:{self.port})",
            retry_on=TRANSPORT_ERRORS,
            on_wait=self._reporter(on_wait),
            hint="check that the instance is running and that your IP is in the lab's SSH CIDR",
        )

    def _reporter(self, on_wait: Callable[[str], None] | None) -> Callable[[float], None] | None:
        """Say we are waiting at once, then every 10 s: one line per attempt would drown the rest."""
        if on_wait is None:
            return None
        said: set[int] = set()

        def report(waited: float) -> None:
            if int(waited // 10) not in said:
                said.add(int(waited // 10))
                on_wait(f"waiting for SSH on {self.name} ({waited:.0f}s)")

        return report

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # -- running -----------------------------------------------------------------------------
    def run(
        self,
        command: str,
        *,
        stdin: str | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run a shell command; reconnect and re-run it if the transport drops."""

        def once() -> CommandResult:
            if STOP.is_set():
                raise Interrupted("interrupted")
            try:
                self.connect()
                assert self._connection is not None
                result = self._connection.run(
                    command,
                    hide=True,
                    warn=True,
                    in_stream=_WholeInput(stdin) if stdin is not None else False,
                    timeout=timeout,
                )
            except TRANSPORT_ERRORS:
                self.close()
                raise
            if result.exited == -1:
                # The channel closed with no exit status: the session died (sshd restarted,
                # node rebooting), not the command. Reconnect and run it again.
                self.close()
                raise EOFError(f"{self.name}: the SSH session ended before `{command[:40]}` finished")
            return CommandResult(self.name, command, result.exited, result.stdout, result.stderr)

        try:
            result = retrying(once, attempts=4, retry_on=TRANSPORT_ERRORS, first=0.5, interval=3.0)
        except CommandTimedOut:
            self.close()
            raise LabError(f"{self.name}: `{command[:60]}` took longer than {timeout:.0f}s") from None
        except TRANSPORT_ERRORS as error:
            raise LabError(
                f"{self.name}: lost the SSH connection: {error}", "run the same command again"
            ) from None
        if check and not result.ok:
            raise RemoteCommandError(self.name, command, result.exit_code, result.stderr or result.stdout)
        return result


def in_parallel(nodes: Iterable[Node], work: Callable[[Node], T]) -> dict[str, T]:
    """Run `work` on every node at once; raise one error naming every node that failed.

    On Ctrl-C the workers are told to stop and their connections are closed, so the process
    exits now rather than when the slowest remote wait ends.
    """
    nodes = list(nodes)
    futures: dict[str, Future[T]] = {node.name: Future() for node in nodes}

    def run(node: Node, future: Future[T]) -> None:
        try:
            future.set_result(work(node))
        except BaseException as error:
            future.set_exception(error)

    # Daemon threads: a remote wait cut short by Ctrl-C must not keep the process alive.
    for node in nodes:
        threading.Thread(
            target=run, args=(node, futures[node.name]), name=f"node-{node.name}", daemon=True
        ).start()
    try:
        wait(futures.values())
    except KeyboardInterrupt:
        interrupt()
        for node in nodes:
            node.close()
        raise
    results: dict[str, T] = {}
    errors: list[tuple[str, BaseException]] = []
    for name, future in futures.items():
        error = future.exception()
        if error is None:
            results[name] = future.result()
        else:
            errors.append((name, error))
    if errors:
        if len(errors) == 1:
            raise errors[0][1]
        first = errors[0][1]
        message = "; ".join(str(e) for _, e in errors)
        raise LabError(message, getattr(first, "hint", None)) from first
    return results
