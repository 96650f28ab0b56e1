"""`invoke trace` is one command at a time on a lab, as `scenario` is (it takes the lab's lock), and
it first finishes a cleanup a scenario left pending."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import lock
from lab.config import load_settings
from lab.errors import LabError
from lab.progress import Progress
from lab.trace.cli import run_live


def test_trace_is_refused_while_another_command_holds_the_lab(tmp_path: Path) -> None:
    settings = load_settings({"home": str(tmp_path)}, tmp_path / "none.yaml")
    with lock.hold(settings.lab_dir, "scenario"), pytest.raises(LabError) as refused:
        run_live(settings, [], None, "https://example.com/", None, False, None, "text")
    assert "lab 'egress' is busy: `invoke scenario` (pid" in refused.value.message


class RecordingCluster:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], str | None]] = []

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 0, check: bool = True) -> None:
        self.calls.append((args, stdin))


def test_a_cleanup_a_scenario_left_pending_is_finished_before_a_trace(tmp_path: Path) -> None:
    from lab.scenario import pending
    from lab.scenario.undo import Undo
    from lab.state import LabState, load_state, save_state
    from lab.trace.applied import finish_pending

    save_state(tmp_path, LabState(name="egress", region="ap-northeast-2", stack_name="lab-egress"))
    left = Undo(deletes=[("egress.yaml", "kind: ServiceEntry\nmetadata: {name: wiki}\n")])
    pending.save(tmp_path, "egress-sni-broken", left)
    cluster = RecordingCluster()
    finish_pending(cluster, tmp_path, Progress(spinner=False))  # type: ignore[arg-type]
    assert cluster.calls == [
        (("delete", "-f", "-", "--ignore-not-found", "--wait=true"), "kind: ServiceEntry\nmetadata: {name: wiki}\n")
    ]
    state = load_state(tmp_path)
    assert state is not None and state.pending_cleanup is None
