"""The bridge between Invoke tasks and the package: settings in, one-line errors out."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from invoke.exceptions import Exit

from lab.config import Settings, load_settings
from lab.errors import LabError


def settings_from(**flags: Any) -> Settings:
    return load_settings(flags)


def run(action: Callable[[], int | None], debug: bool = False) -> None:
    """Run a command; turn expected failures into one line and an exit code (a traceback with --debug)."""
    debug = debug or os.environ.get("LAB_DEBUG", "") not in ("", "0")
    try:
        code = action() or 0
    except LabError as error:
        if debug:
            traceback.print_exc()
        line = f"error: {error.message}" + (f" → {error.hint}" if error.hint else "")
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
    if code:
        sys.stdout.flush()
        raise Exit(code=code)
