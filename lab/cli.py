"""The bridge between Invoke tasks and the package: settings in, one-line errors out."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from invoke.exceptions import Exit
from invoke.parser import Argument
from invoke.tasks import Task

from lab.config import Settings, load_settings
from lab.errors import LabError, UsageError  # noqa: F401 - UsageError is used by tasks.py

T = TypeVar("T")


def settings_from(**flags: Any) -> Settings:
    """The settings, checked inside the same one-line error boundary as the command itself."""
    return boundary(lambda: load_settings(flags), "--debug" in sys.argv)


def run(action: Callable[[], int | None], debug: bool = False) -> None:
    """Run a command; turn expected failures into one line and an exit code (a traceback with --debug)."""
    code = boundary(action, debug) or 0
    if code:
        sys.stdout.flush()
        raise Exit(code=code)


def boundary(action: Callable[[], T], debug: bool = False) -> T:
    """Call `action`; a LabError becomes `error: what → fix` and its exit code, anything else
    one line asking for a report. `--debug` (or LAB_DEBUG=1) adds the traceback."""
    debug = debug or os.environ.get("LAB_DEBUG", "") not in ("", "0")
    try:
        return action()
    except LabError as error:
        if debug:
            traceback.print_exc()
        # A multi-line message (a log tail) keeps its fix on a line of its own, where it is seen.
        joint = "\n  → " if "\n" in error.message else " → "
        line = f"error: {error.message}" + (f"{joint}{error.hint}" if error.hint else "")
        raise Exit(line, code=error.exit_code) from None
    except KeyboardInterrupt:
        raise Exit("interrupted", code=130) from None
    except Exception as error:
        if debug:
            traceback.print_exc()
            raise Exit(code=1) from None
        raise Exit(
            f"error: unexpected {type(error).__name__}: {error} → run again with --debug for the traceback, "
            "and please report it",
            code=1,
        ) from None


class _PositionalOr(Argument):
    """A positional that another flag may stand in for (Invoke has no optional positionals)."""

    instead: Argument | None = None

    @property
    def value(self) -> Any:
        if self._value is None and self.instead is not None and self.instead.value:
            return ""
        return self._value if self._value is not None else self.default

    @value.setter
    def value(self, arg: str) -> None:
        self.set_value(arg, cast=True)


class _SecondWord(Argument):
    """A second positional taken only after a given first word (`invoke scenario new NAME`)."""

    first: Argument | None = None
    word = ""

    @property
    def value(self) -> Any:
        if self._value is None and self.first is not None and self.first.value != self.word:
            return ""  # not asked for: neither missing nor swallowing the next task's name
        return self._value if self._value is not None else self.default

    @value.setter
    def value(self, arg: str) -> None:
        self.set_value(arg, cast=True)


def positional_or(flag: str, second_after: str | None = None) -> type[Task]:
    """A Task class whose positional may be left out when `--<flag>` is given:
    `invoke scenario NAME` or `invoke scenario --all`; `invoke analyze PATH` or `--scenario NAME`.
    With `second_after`, a second positional follows only that first word (`scenario new NAME`)."""

    class PositionalOrTask(Task):
        def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
            arguments = super().get_arguments(ignore_unknown_help=ignore_unknown_help)
            instead = next(a for a in arguments if a.name == flag)
            positionals = [a for a in arguments if a.positional]
            for argument in positionals[:1] if second_after else positionals:
                argument.__class__ = _PositionalOr
                argument.instead = instead
            if second_after:
                for argument in positionals[1:]:
                    argument.__class__ = _SecondWord
                    argument.first, argument.word = positionals[0], second_after
            return arguments

    return PositionalOrTask
