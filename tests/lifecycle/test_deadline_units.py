"""The deadline's pure parts: TTL parsing, times and countdown text, role names, the settings."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lab.config import load_settings
from lab.deadline import at_expression, countdown, deadline_after, parse_at, parse_ttl, role_name
from lab.errors import UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(minutes=90)),
        (" 6H ", timedelta(hours=6)),
        ("30m", timedelta(minutes=30)),
        ("7d", timedelta(days=7)),
        ("none", None),
        ("None", None),
        (None, timedelta(hours=6)),
    ],
)
def test_ttl_forms(text: str | None, expected: timedelta | None) -> None:
    assert parse_ttl(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "not a duration"),
        ("-1h", "not a duration"),
        ("10x", "not a duration"),
        ("1.5h", "not a duration"),
        ("", "not a duration"),
        ("h", "not a duration"),
        ("0m", "shorter than the minimum 30m"),
        ("29m", "shorter than the minimum 30m"),
        ("400d", "longer than the maximum 7d"),
        ("7d1m", "longer than the maximum 7d"),
    ],
)
def test_bad_ttls_name_the_limits(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        parse_ttl(text)
    assert "\n" not in str(caught.value)


def test_ttl_comes_from_flag_env_or_lab_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("LAB_")]:
        monkeypatch.delenv(var)
    config = tmp_path / "lab.yaml"
    config.write_text("ttl: 4h\n")
    assert load_settings({}, tmp_path / "none.yaml").ttl == "6h"
    assert load_settings({}, config).ttl == "4h"
    monkeypatch.setenv("LAB_TTL", "2d")
    assert load_settings({}, config).ttl == "2d"
    assert load_settings({"ttl": "none"}, config).ttl == "none"


def test_the_deadline_is_a_whole_second_in_utc() -> None:
    now = datetime(2026, 12, 1, 15, 39, 20, 250000, tzinfo=timezone.utc)
    due = deadline_after(timedelta(hours=6), now)
    assert due == datetime(2026, 12, 1, 21, 39, 21, tzinfo=timezone.utc)
    assert at_expression(due) == "at(2026-12-01T21:39:21)"
    assert parse_at("at(2026-12-01T21:39:21)") == due
    assert parse_at("rate(1 day)") is None and parse_at("at(2026-12-01T21:40:00)", "Asia/Seoul") is None


def test_the_countdown_reads_in_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    try:
        now = datetime(2026, 12, 1, 6, 40, tzinfo=timezone.utc)  # 15:40 KST
        due = datetime(2026, 12, 1, 12, 40, tzinfo=timezone.utc)  # 21:40 KST
        assert countdown(due, now) == "deletes itself at 21:40 KST (in 6h 0m) unless you run invoke extend"
        soon = now + timedelta(seconds=20)  # the end of `up`, moments after the deadline was set
        assert countdown(due, soon) == "deletes itself at 21:40 KST (in 6h 0m) unless you run invoke extend"
        later = datetime(2026, 12, 3, 13, 10, tzinfo=timezone.utc)
        assert countdown(later, now) == (
            "deletes itself at Thu 03 Dec 22:10 KST (in 2d 6h 30m) unless you run invoke extend"
        )
    finally:
        monkeypatch.undo()
        time.tzset()


def test_role_names_fit_iam_and_never_collide() -> None:
    assert role_name("egress", "ap-northeast-2") == "lab-egress-ttl-ap-northeast-2"
    long_a, long_b = "a" * 59 + "b", "a" * 59 + "c"
    names = {role_name(n, r) for n in (long_a, long_b) for r in ("ap-northeast-2", "ap-southeast-4")}
    assert len(names) == 4
    for name in names:
        assert len(name) <= 64 and name.startswith("lab-aaaa") and "-ttl-ap-" in name


def _references(node: object) -> set[str]:
    """Logical ids a template fragment points at (Ref, Fn::GetAtt, ${X} in Fn::Sub)."""
    import re

    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= set(re.findall(r"\$\{([A-Za-z0-9]+)", text))
            found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


def test_every_resource_depends_on_the_deadline_role_so_it_is_deleted_last() -> None:
    """CloudFormation deletes a resource only after everything that depends on it: the role whose
    credentials delete the stack must be the last thing standing."""
    from cfn_helpers import TEMPLATE
    from cfnlint.decode import decode

    template, errors = decode(str(TEMPLATE))
    assert not errors
    resources = template["Resources"]
    direct = {}
    for name, resource in resources.items():
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else list(depends)
        direct[name] = (set(depends) | _references(resource.get("Properties", {}))) & set(resources)

    def closure(name: str) -> set[str]:
        seen, todo = set(), [name]
        while todo:
            for parent in direct[todo.pop()] - seen:
                seen.add(parent)
                todo.append(parent)
        return seen

    assert direct["DeadlineRole"] == set(), "the role depends on nothing"
    for name in resources:
        if name != "DeadlineRole":
            assert "DeadlineRole" in closure(name), name


def test_create_schedule_is_retried_while_iam_propagates_the_new_role() -> None:
    """CreateSchedule refuses a role Scheduler cannot assume yet (a role seconds old): retried."""
    import boto3
    from botocore.stub import Stubber

    from lab.expiry import Deadlines

    class Cloud:
        region = "ap-northeast-2"
        session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=region)

    deadlines = Deadlines(Cloud(), "egress", "lab-egress", "123456789012")  # type: ignore[arg-type]
    when = datetime(2026, 12, 1, 21, 40, tzinfo=timezone.utc)
    with Stubber(deadlines.scheduler) as stub:
        stub.add_client_error("get_schedule", "ResourceNotFoundException", http_status_code=404)
        stub.add_client_error(
            "create_schedule",
            "ValidationException",
            "The execution role you provide must allow AWS EventBridge Scheduler to assume the role.",
            http_status_code=400,
        )
        expected = {
            "Name": "lab-egress",
            "GroupName": "default",
            "ScheduleExpression": "at(2026-12-01T21:40:00)",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "State": "ENABLED",
            "Description": "istio-egress-lab: deletes stack lab-egress at its deadline",
            "Target": {
                "Arn": "arn:aws:scheduler:::aws-sdk:cloudformation:deleteStack",
                "RoleArn": "arn:aws:iam::123456789012:role/lab-egress-ttl-ap-northeast-2",
                "Input": '{"StackName": "lab-egress"}',
                "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185},
            },
        }
        stub.add_response("create_schedule", {"ScheduleArn": "arn:x"}, expected)
        deadlines.set(when)
        stub.assert_no_pending_responses()
