"""The JSON-lines command log: one line per simulated tool invocation."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

STDIN_LIMIT = 20_000


def record(path: Path, entry: dict) -> None:
    """Append one line in a single write under a lock, so parallel nodes never interleave."""
    stdin = entry.get("stdin")
    if isinstance(stdin, str) and len(stdin) > STDIN_LIMIT:
        entry = {**entry, "stdin": stdin[:STDIN_LIMIT]}
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
    finally:
        os.close(fd)


def read(path: Path) -> list[dict]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
