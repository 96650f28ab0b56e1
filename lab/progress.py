"""Progress display: one line per step with ✓/✗ and its time, in the manner of `kind create cluster`.

A spinner only on a terminal; plain lines otherwise (CI, pipes), so logs stay readable.
"""

from __future__ import annotations

import sys
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
    status: Status | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def note(self, text: str) -> None:
        """A transient detail (waiting for X): spinner text on a terminal, a plain line elsewhere."""
        if self.status is not None:
            self.status.update(f"{self.title}: {text}")
        else:
            self.progress.console.print(f"  {text}", highlight=False)

    def detail(self, text: str) -> None:
        """A detail worth keeping on screen."""
        self.progress.console.print(f"  {text}", highlight=False)

    def warn(self, text: str) -> None:
        self.progress.warn(text)

    def skip(self, reason: str = "already done") -> None:
        self.outcome = reason


class Progress:
    def __init__(self, console: Console | None = None, spinner: bool | None = None) -> None:
        self.console = console or Console(file=sys.stdout, highlight=False, soft_wrap=True)
        self.spinner = self.console.is_terminal if spinner is None else spinner

    @contextmanager
    def step(self, title: str) -> Iterator[StepHandle]:
        handle = StepHandle(title, self)
        status = self.console.status(title) if self.spinner else None
        if status is not None:
            status.start()
            handle.status = status
        else:
            self.console.print(f"{SKIP} {title} …", highlight=False)
        try:
            yield handle
        except BaseException:
            self._stop(status)
            self.console.print(f"[red]{FAIL}[/] {title} ({handle.elapsed:.1f}s)", highlight=False)
            raise
        self._stop(status)
        suffix = f"{handle.outcome}, " if handle.outcome else ""
        self.console.print(f"[green]{OK}[/] {title} ({suffix}{handle.elapsed:.1f}s)", highlight=False)

    @staticmethod
    def _stop(status: Status | None) -> None:
        if status is not None:
            status.stop()

    def info(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def warn(self, text: str) -> None:
        self.console.print(f"[yellow]![/] {text}", highlight=False)
