"""The one place that polls and retries. Everything that waits goes through here.

Built on tenacity so that deadlines, backoff and the reason for giving up are uniform:
no fixed sleeps elsewhere in the code base.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_before_delay,
    stop_when_event_set,
    wait_exponential,
)

from lab.errors import LabError

T = TypeVar("T")


class Timeout(LabError):
    """A wait ran past its deadline."""


class Interrupted(LabError):
    """The user pressed Ctrl-C while this wait ran in a worker thread."""

    exit_code = 130


# Set on Ctrl-C: waits in worker threads (which never see KeyboardInterrupt) stop at once.
STOP = threading.Event()


def interrupt() -> None:
    STOP.set()


def _check_stop() -> None:
    if STOP.is_set():
        raise Interrupted("interrupted")


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 2.0,
    first: float = 0.2,
    on_wait: Callable[[float], None] | None = None,
    retry_on: tuple[type[BaseException], ...] = (),
    hint: str | None = None,
) -> T:
    """Call `check` until it returns a truthy value; return that value.

    Polls with exponential backoff from `first` up to `interval` seconds, so cheap checks answer
    quickly when things are already done. Exceptions in `retry_on` count as "not yet". On the
    deadline, raises Timeout naming `what`.
    """
    started = time.monotonic()

    def before_sleep(_state: object) -> None:
        if on_wait:
            on_wait(time.monotonic() - started)

    retrying = Retrying(
        stop=stop_before_delay(timeout) | stop_when_event_set(STOP),
        wait=wait_exponential(multiplier=first, min=first, max=interval),
        retry=retry_if_result(lambda value: not value) | retry_if_exception_type(retry_on),
        before_sleep=before_sleep,
        sleep=STOP.wait,
        reraise=False,
    )
    try:
        return retrying(check)
    except RetryError as error:
        _check_stop()
        last = error.last_attempt
        reason = ""
        if last.failed:
            reason = f": last error: {last.exception()}"
        raise Timeout(f"timed out after {timeout:.0f}s waiting for {what}{reason}", hint) from None


def retrying(
    call: Callable[[], T],
    *,
    attempts: int = 3,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    first: float = 0.5,
    interval: float = 5.0,
) -> T:
    """Run `call`, retrying transient failures up to `attempts` times; re-raise the last one."""
    retry = Retrying(
        stop=lambda state: state.attempt_number >= attempts or STOP.is_set(),
        wait=wait_exponential(multiplier=first, min=first, max=interval),
        retry=retry_if_exception_type(retry_on),
        sleep=STOP.wait,
        reraise=True,
    )
    try:
        return retry(call)
    except Exception:
        _check_stop()
        raise
