"""`invoke trace` is one command at a time on a lab, as `scenario` is: it takes the lab's lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import lock
from lab.config import load_settings
from lab.errors import LabError
from lab.trace.cli import run_live


def test_trace_is_refused_while_another_command_holds_the_lab(tmp_path: Path) -> None:
    settings = load_settings({"home": str(tmp_path)}, tmp_path / "none.yaml")
    with lock.hold(settings.lab_dir, "scenario"), pytest.raises(LabError) as refused:
        run_live(settings, [], None, "https://example.com/", None, False, None, "text")
    assert "lab 'egress' is busy: `invoke scenario` (pid" in refused.value.message
