"""Progress display: one line per step with ✓/✗ and its time, in the manner of `kind create cluster`.

Steps may overlap. On a terminal one spinner line says what every running step is doing now;
elsewhere (CI, pipes) each note is a line too. Every line is printed whole, under one lock, so
lines never interleave, and a detail names its step when more than one runs.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.status import Status

OK, FAIL, SKIP = "✓", "✗", "•"


@dataclass
class StepHandle:
    title: str
    progress: Progress
    started: float = field(default_factory=time.monotonic)
    outcome: str | None = None
    now: str | None = None  # what the step is doing at the moment
    waited: float = 0.0  # seconds spent blocked on other steps, not working
    waiting_for: str | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def own(self) -> float:
        """The step's own time: elapsed, less what it spent waiting for other steps."""
        return max(0.0, self.elapsed - self.waited)

    def note(self, text: str) -> None:
        """A transient detail (waiting for X): spinner text on a terminal, a plain line elsewhere."""
        self.now = text
        self.progress._noted(self, text)

    def detail(self, text: str) -> None:
        """A detail worth keeping on screen."""
        self.progress._line(self, f"  {text}")

    def warn(self, text: str) -> None:
        self.progress.warn(text)

    def skip(self, reason: str = "already done") -> None:
        self.outcome = reason

    @contextmanager
    def blocked_on(self, what: str) -> Iterator[None]:
        """Time spent waiting for another step: shown as such, not counted as this step's own."""
        started, self.waiting_for = time.monotonic(), what
        self.note(f"waiting for {what}")
        try:
            yield
        finally:
            self.waited += time.monotonic() - started
            self.waiting_for = None


class Progress:
    def __init__(self, console: Console | None = None, spinner: bool | None = None) -> None:
        self.console = console or Console(file=sys.stdout, highlight=False, soft_wrap=True)
        self.spinner = self.console.is_terminal if spinner is None else spinner
        self._lock = threading.RLock()
        self._active: list[StepHandle] = []
        self._status: Status | None = None

    @contextmanager
    def step(self, title: str) -> Iterator[StepHandle]:
        handle = StepHandle(title, self)
        with self._lock:
            self._active.append(handle)
            if not self.spinner:
                self._print(f"{SKIP} {title} …")
            self._refresh()
        try:
            yield handle
        except BaseException as error:
            stopped = getattr(error, "stopped_by", None)
            with self._lock:
                self._active.remove(handle)
                if stopped:
                    self._print(f"{SKIP} {title} (stopped: {stopped}, {handle.elapsed:.1f}s)")
                else:
                    self._print(f"[red]{FAIL}[/] {title} ({_times(handle)})")
                self._refresh()
            raise
        with self._lock:
            self._active.remove(handle)
            suffix = f"{handle.outcome}, " if handle.outcome else ""
            self._print(f"[green]{OK}[/] {title} ({suffix}{_times(handle)})")
            self._refresh()

    # -- output, one whole line at a time ------------------------------------------------------
    def _print(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def _line(self, handle: StepHandle | None, text: str) -> None:
        with self._lock:
            if handle is not None and len(self._active) > 1:
                text = f"{text}  [{handle.title}]"
            self._print(text)

    def _noted(self, handle: StepHandle, text: str) -> None:
        with self._lock:
            if self.spinner:
                self._refresh()
            else:
                self._line(handle, f"  {text}")

    def _refresh(self) -> None:
        """The spinner line: every running step and what it is doing or waiting for."""
        if not self.spinner:
            return
        if not self._active:
            if self._status is not None:
                self._status.stop()
                self._status = None
            return
        text = " · ".join(f"{h.title}: {h.now}" if h.now else h.title for h in self._active)
        if self._status is None:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def info(self, text: str) -> None:
        with self._lock:
            self._print(text)

    def warn(self, text: str) -> None:
        with self._lock:
            self._print(f"[yellow]![/] {text}")


def _times(handle: StepHandle) -> str:
    if handle.waited >= 0.05:
        return f"{handle.own:.1f}s, after {handle.waited:.1f}s waiting for other steps"
    return f"{handle.elapsed:.1f}s"
