"""One command at a time per lab: a lock file under `.lab/<name>/`, and `down`'s word to its holder.

The lock is an advisory `flock` on `.lab/<name>/lock`, whose text says who holds it (pid, command,
start time). The kernel releases a flock when its process dies, so the lock of a command that
crashed or was killed is taken over without asking: no stale lock to delete by hand.

`down` never waits for the lock. It writes `.lab/<name>/deleting` first; the holder's watcher sees
it (or the stack in DELETE_IN_PROGRESS, for a `down` run from another machine), interrupts the
holder's main thread at once as Ctrl-C would, and the holder writes no state from then on.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.errors import LabError
from lab.state import now_iso, write_private

LOCK_FILE, DELETING_FILE = "lock", "deleting"
WATCH_INTERVAL = 0.2  # seconds between looks at the marker: a local stat, cheap
STACK_EVERY = 25  # look at the stack every this many marker looks (5 s, CloudFormation's own cadence)


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    started_at: str

    def describe(self) -> str:
        return f"`invoke {self.command}` (pid {self.pid}, started {self.started_at})"


class Deleted(LabError):
    """`invoke down` is deleting the lab this command works on."""


@dataclass
class Held:
    """The lock as its holder sees it: whether `down` has started on the lab."""

    lab_dir: Path
    holder: Holder
    deleting: bool = False

    def still_ours(self) -> bool:
        """False once `down` began, or archived the lab folder (the lock file moved with it)."""
        return not self.deleting and (self.lab_dir / LOCK_FILE).exists()

    def check(self) -> None:
        if self.deleting:
            raise Deleted(
                f"`invoke down` is deleting this lab: {self.holder.command} stopped",
                "wait for `invoke down` to finish, then `invoke up` creates a new lab",
            )


_current: Held | None = None


def current() -> Held | None:
    """The lock this process holds, if any (state writes ask it whether they may still write)."""
    return _current


def read_holder(lab_dir: Path) -> Holder | None:
    try:
        data = json.loads((lab_dir / LOCK_FILE).read_text())
        return Holder(int(data["pid"]), str(data["command"]), str(data["started_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def hold(
    lab_dir: Path, command: str, stack_deleting: Callable[[], bool] | None = None
) -> Iterator[Held]:
    """Hold the lab's lock for `command`, or refuse in one line naming the holder."""
    global _current
    lab_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (lab_dir / DELETING_FILE).unlink(missing_ok=True)  # left by a `down` that did not finish
    fd = os.open(lab_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        other = read_holder(lab_dir)
        who = other.describe() if other else "another command"
        raise LabError(
            f"lab '{lab_dir.name}' is busy: {who} is working on it",
            "wait for it to finish, or stop it with Ctrl-C in its terminal (`invoke down` may run meanwhile)",
        ) from None
    holder = Holder(os.getpid(), command, now_iso())
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(asdict(holder)) + "\n").encode(), 0)
    held = Held(lab_dir, holder)
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(held, stop, stack_deleting), name="lab-lock-watch", daemon=True
    )
    _current = held
    watcher.start()
    try:
        yield held
    except KeyboardInterrupt:
        if held.deleting:
            held.check()  # the interrupt was ours: say why, in one line
        raise
    finally:
        stop.set()
        _current = None
        if held.still_ours():
            os.ftruncate(fd, 0)
        _forget_empty(lab_dir)
        os.close(fd)  # releases the flock
    held.check()


def _forget_empty(lab_dir: Path) -> None:
    """A command that created nothing (a refused `up`) leaves no folder behind."""
    try:
        if {p.name for p in lab_dir.iterdir()} <= {LOCK_FILE, DELETING_FILE}:
            for name in (LOCK_FILE, DELETING_FILE):
                (lab_dir / name).unlink(missing_ok=True)
            lab_dir.rmdir()
    except OSError:
        pass


def _watch(held: Held, stop: threading.Event, stack_deleting: Callable[[], bool] | None) -> None:
    looks = 0
    while not stop.wait(WATCH_INTERVAL):
        looks += 1
        seen = (held.lab_dir / DELETING_FILE).exists() or not (held.lab_dir / LOCK_FILE).exists()
        if not seen and stack_deleting is not None and looks % STACK_EVERY == 0:
            try:
                seen = stack_deleting()
            except Exception:  # a failed look is not a deletion; the next one may answer
                seen = False
        if seen:
            held.deleting = True
            # A real SIGINT to the main thread, as Ctrl-C would send: it also cuts a blocking wait,
            # which `_thread.interrupt_main` would not.
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
            return


def announce_deletion(lab_dir: Path) -> Holder | None:
    """`down` tells the holder, if any, that the lab is going away; returns who held it."""
    if not lab_dir.is_dir():
        return None
    holder = read_holder(lab_dir)
    write_private(lab_dir / DELETING_FILE, f"{os.getpid()}\n")
    return holder if holder and _locked(lab_dir) else None


def _locked(lab_dir: Path) -> bool:
    try:
        fd = os.open(lab_dir / LOCK_FILE, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def wait_released(lab_dir: Path, timeout: float) -> bool:
    """Block until no one holds the lock (the holder stopped), at most `timeout` seconds."""
    from lab.waiting import Timeout, wait_until

    try:
        wait_until(lambda: not _locked(lab_dir), timeout=timeout, what="the lab's lock", first=0.1, interval=0.5)
    except Timeout:
        return False
    return True
