"""A scenario cleanup abandoned with a second Ctrl-C, kept in the lab's state until it is finished.

`invoke status` shows it; the next `invoke scenario` (and `trace`) or `invoke reset` finishes it
before anything else, so no run starts from a cluster a previous run left half-cleaned.
"""

from __future__ import annotations

import json
from pathlib import Path

from lab import lock
from lab.scenario.undo import Undo
from lab.state import load_state, save_state


def save(lab_dir: Path, scenario: str, undo: Undo) -> None:
    state = load_state(lab_dir)
    held = lock.current()
    if state is None or (held is not None and not held.still_ours()):
        return
    state.pending_cleanup = {"scenario": scenario, "undo": json.loads(undo.to_json())}
    save_state(lab_dir, state)


def load(lab_dir: Path) -> tuple[str, Undo] | None:
    state = load_state(lab_dir)
    if state is None or not state.pending_cleanup:
        return None
    record = state.pending_cleanup
    return str(record.get("scenario", "?")), Undo.from_data(record.get("undo"), "state.json pending_cleanup")


def clear(lab_dir: Path) -> None:
    state = load_state(lab_dir)
    if state is not None and state.pending_cleanup is not None:
        state.pending_cleanup = None
        save_state(lab_dir, state)
