"""The stack step's decisions on an existing stack, against a recording stand-in for the cloud."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from lab import expiry, spec
from lab.cloud import StackInfo
from lab.config import load_settings
from lab.errors import LabError
from lab.lab import Lab
from lab.progress import Progress
from lab.steps.base import UpContext
from lab.steps.stack import Stack

OURS = {"lab:created-by": "istio-egress-lab", "lab:name": "egress", "lab:owner": "arn:me"}
OUTPUTS = {
    f"{key}{kind}Ip": f"127.0.0.{i}" if kind == "Public" else f"192.168.10.{i}"
    for i, key in enumerate(("K3sS", "K3sW1", "K3sW2", "Testpc"), start=1)
    for kind in ("Public", "Private")
}


class RecordingCloud:
    def __init__(self, status: str) -> None:
        self.status = status
        self.calls: list[str] = []

    def stack(self, name_or_id: str) -> StackInfo | None:
        self.calls.append(f"describe {name_or_id}")
        return StackInfo("lab-egress", "old-id", self.status, datetime.now(timezone.utc), OURS, {})

    def delete_stack(self, stack_id: str) -> None:
        self.calls.append(f"delete {stack_id}")

    def create_stack(self, name: str, template: str, parameters: dict, tags: dict) -> str:
        self.calls.append(f"create {name}")
        return "new-id"

    def wait_for_stack(self, stack_id: str, *, done: tuple, timeout: float, on_event) -> StackInfo:
        self.calls.append(f"wait {stack_id} {done[0]}")
        return StackInfo("lab-egress", stack_id, done[0], datetime.now(timezone.utc), OURS, OUTPUTS)

    def instance_names(self, stack_id: str) -> dict[str, str]:
        return {"k3s-s": "i-1"}


@pytest.fixture(autouse=True)
def _deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deadline's own calls are tested in test_deadline.py; here only when it is set."""
    monkeypatch.setattr(expiry, "start", lambda ctx: ctx.cloud.calls.append("deadline"))


def _context(tmp_path: Path, cloud: RecordingCloud) -> UpContext:
    settings = load_settings({"home": str(tmp_path)}, tmp_path / "none.yaml")
    lab = Lab.load_or_new(settings)
    lab.state.spec, lab.state.owner = spec.build(settings, "127.0.0.1/32"), "arn:me"
    lab.state.record_step("ssh", True, 1.0)
    (tmp_path / "egress").mkdir()
    (tmp_path / "egress" / "known_hosts").write_text("old keys\n")
    ctx = UpContext(settings, lab, Progress(spinner=False))
    ctx.__dict__["cloud"] = cloud
    return ctx


def test_a_rolled_back_stack_is_deleted_then_created_again(tmp_path: Path) -> None:
    cloud = RecordingCloud("ROLLBACK_COMPLETE")
    ctx = _context(tmp_path, cloud)
    Stack().run(ctx)
    assert cloud.calls == [
        "describe lab-egress",
        "delete old-id",
        "wait old-id DELETE_COMPLETE",
        "create lab-egress",
        "deadline",  # right after the creation, before its wait
        "wait new-id CREATE_COMPLETE",
    ]
    state = ctx.lab.state
    assert state.stack_id == "new-id" and state.nodes["k3s-s"].public_ip == "127.0.0.1"
    assert "ssh" not in state.steps, "records about the old instances are void"
    assert not (tmp_path / "egress" / "known_hosts").exists(), "old host keys are forgotten"


@pytest.mark.parametrize("status", ["DELETE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "DELETE_FAILED"])
def test_a_stack_in_another_state_is_a_one_line_error(tmp_path: Path, status: str) -> None:
    cloud = RecordingCloud(status)
    with pytest.raises(LabError, match=status):
        Stack().run(_context(tmp_path, cloud))
    assert not [c for c in cloud.calls if c.startswith(("create", "delete"))]


def test_a_stack_being_created_is_waited_for_not_created_again(tmp_path: Path) -> None:
    cloud = RecordingCloud("CREATE_IN_PROGRESS")
    Stack().run(_context(tmp_path, cloud))
    assert cloud.calls == ["describe lab-egress", "wait old-id CREATE_COMPLETE"]
