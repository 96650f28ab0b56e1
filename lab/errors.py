"""Errors the user sees as one line: what is wrong, then how to fix it."""

from __future__ import annotations


class LabError(Exception):
    """A user mistake or an expected failure. Printed as one line, never as a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(LabError):
    """Bad flags or settings."""

    exit_code = 2


class RemoteCommandError(LabError):
    """A command on a node exited non-zero."""

    def __init__(self, node: str, command: str, exit_code: int, stderr: str) -> None:
        tail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {exit_code}"
        super().__init__(f"{node}: `{_short(command)}` failed: {tail}")
        self.node = node
        self.command = command
        self.remote_exit_code = exit_code
        self.stderr = stderr


def _short(command: str, limit: int = 80) -> str:
    command = " ".join(command.split())
    return command if len(command) <= limit else command[: limit - 1] + "…"
