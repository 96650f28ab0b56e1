"""Small pure pieces of the lifecycle: settings precedence, tokens, failure reasons, state files."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lab import spec
from lab.cloud import first_failure
from lab.config import load_settings
from lab.errors import UsageError
from lab.state import LabState, load_state, save_state
from lab.template import parameters


def test_settings_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("LAB_") or v in ("AWS_REGION", "AWS_DEFAULT_REGION")]:
        monkeypatch.delenv(var)
    config = tmp_path / "lab.yaml"
    config.write_text("name: from-file\nregion: eu-west-1\ninstance-type: t3.large\nssh_port: 2200\n")
    assert load_settings({}, config).name == "from-file"
    assert load_settings({}, config).instance_type == "t3.large"
    monkeypatch.setenv("LAB_NAME", "from-env")
    monkeypatch.setenv("LAB_SSH_PORT", "2222")
    settings = load_settings({"region": "us-east-1", "name": None}, config)
    assert (settings.name, settings.region, settings.ssh_port) == ("from-env", "us-east-1", 2222)
    assert load_settings({"name": "from-flag"}, config).name == "from-flag"


def test_settings_file_mistakes_are_usage_errors(tmp_path: Path) -> None:
    config = tmp_path / "lab.yaml"
    config.write_text("colour: blue\n")
    with pytest.raises(UsageError, match="unknown setting"):
        load_settings({}, config)
    config.write_text("ssh_port: twenty-two\n")
    with pytest.raises(UsageError, match="ssh_port"):
        load_settings({}, config)


def test_join_token_is_random_per_lab() -> None:
    settings = load_settings({"name": "t"}, Path("/nonexistent"))
    lab = spec.build(settings, "1.2.3.4/32")
    first, second = parameters(lab), parameters(lab)
    assert first["K3sToken"] != second["K3sToken"]
    assert len(first["K3sToken"]) == 64 and int(first["K3sToken"], 16) >= 0


def test_first_failure_skips_cancellations() -> None:
    now = datetime.now(timezone.utc)
    events = [
        {"LogicalResourceId": "Vpc", "ResourceStatus": "CREATE_COMPLETE", "Timestamp": now},
        {
            "LogicalResourceId": "Sg",
            "ResourceStatus": "CREATE_FAILED",
            "ResourceStatusReason": "Resource creation cancelled",
        },
        {
            "LogicalResourceId": "Server",
            "ResourceStatus": "CREATE_FAILED",
            "ResourceStatusReason": "vCPU limit exceeded",
        },
        {"LogicalResourceId": "lab", "ResourceStatus": "ROLLBACK_IN_PROGRESS", "ResourceStatusReason": "x"},
    ]
    assert first_failure(events) == "Server: vCPU limit exceeded"
    assert first_failure(events[:2]) is None


def test_state_is_written_atomically_and_privately(tmp_path: Path) -> None:
    state = LabState(name="n", region="r", stack_name="lab-n", stack_id="id-1")
    save_state(tmp_path / "n", state)
    path = tmp_path / "n" / "state.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    state.stack_id = "id-2"
    save_state(tmp_path / "n", state)
    assert load_state(tmp_path / "n").stack_id == "id-2"
    assert [p.name for p in (tmp_path / "n").iterdir()] == ["state.json"], "no temporary file left behind"


def test_a_stack_of_another_owner_is_refused() -> None:
    from lab import TOOLKIT
    from lab.cloud import StackInfo
    from lab.errors import LabError
    from lab.steps.stack import require_ours

    tags = {"lab:created-by": TOOLKIT, "lab:owner": "arn:aws:iam::1:user/alice"}
    info = StackInfo("lab-egress", "id", "CREATE_COMPLETE", datetime.now(timezone.utc), tags, {})
    require_ours(info, "arn:aws:iam::1:user/alice")
    with pytest.raises(LabError, match="belongs to arn:aws:iam::1:user/alice"):
        require_ours(info, "arn:aws:iam::1:user/bob")
    with pytest.raises(LabError, match="not tagged"):
        require_ours(
            StackInfo("lab-egress", "id", "CREATE_COMPLETE", datetime.now(timezone.utc), {}, {}), None
        )
