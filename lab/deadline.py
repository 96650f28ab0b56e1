"""The lab's deadline (TTL): durations, times, names and the schedule request. No AWS calls here.

A lab deletes itself at its deadline: an EventBridge Scheduler one-time schedule calls
CloudFormation DeleteStack as a role that can delete this lab's stack and nothing else
(docs/architecture.md, "The deadline").
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from lab import TOOLKIT
from lab.errors import UsageError

DEFAULT_TTL = "6h"
NO_TTL = "none"
# Below this, the lab would go while `up` is still provisioning it (about ten minutes).
MIN_TTL = timedelta(minutes=30)
# A week covers a long weekend of study; longer than that is a lab to delete and re-create.
MAX_TTL = timedelta(days=7)
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_DURATION = re.compile(r"(?:\d+[mhd])+")
_PART = re.compile(r"(\d+)([mhd])")
_AT = re.compile(r"at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)")
_HINT = "use minutes, hours or days such as 90m, 4h or 2d (30m to 7d), or none for no deadline"

# The universal target that calls CloudFormation's DeleteStack (EventBridge Scheduler user guide,
# "Using universal targets": arn:aws:scheduler:::aws-sdk:<service>:<apiAction>).
DELETE_STACK_TARGET = "arn:{partition}:scheduler:::aws-sdk:cloudformation:deleteStack"
ROLE_NAME_MAX = 64  # IAM's limit on role names
# Scheduler's defaults, made explicit: a throttled DeleteStack is retried for up to a day.
RETRY_POLICY = {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


def parse_ttl(text: str | None) -> timedelta | None:
    """A duration such as 90m, 4h, 2d or 1h30m; None for `none`. One-line UsageError otherwise."""
    value = (text if text is not None else DEFAULT_TTL).strip().lower()
    if value == NO_TTL:
        return None
    if not _DURATION.fullmatch(value):
        raise UsageError(f"TTL '{text}' is not a duration", _HINT)
    ttl = sum((timedelta(**{_UNITS[unit]: int(n)}) for n, unit in _PART.findall(value)), timedelta())
    if ttl < MIN_TTL:
        raise UsageError(f"TTL {value} is shorter than the minimum {format_ttl(MIN_TTL)}", _HINT)
    if ttl > MAX_TTL:
        raise UsageError(
            f"TTL {value} is longer than the maximum {format_ttl(MAX_TTL)}",
            "pick 7d or less; `invoke extend` moves the deadline later when you need more",
        )
    return ttl


def format_ttl(ttl: timedelta) -> str:
    minutes = int(ttl.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return "".join(parts) or "0m"


def deadline_after(ttl: timedelta, now: datetime | None = None) -> datetime:
    """now + ttl, to the whole second (at() has no finer grain)."""
    when = (now or utc_now()) + ttl
    return when.replace(microsecond=0) + timedelta(seconds=1) if when.microsecond else when


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def at_expression(when: datetime) -> str:
    """Scheduler's one-time form, at(yyyy-mm-ddThh:mm:ss), read in ScheduleExpressionTimezone (UTC)."""
    return f"at({when.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S})"


def parse_at(expression: str, zone: str = "UTC") -> datetime | None:
    match = _AT.fullmatch(expression or "")
    if not match or zone != "UTC":
        return None
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=timezone.utc)


def local_time(when: datetime, now: datetime | None = None) -> str:
    """21:40 KST today; with the date when the deadline is another day."""
    local, today = when.astimezone(), (now or utc_now()).astimezone()
    clock = local.strftime("%H:%M %Z").strip()
    return clock if local.date() == today.date() else f"{local:%a %d %b} {clock}"


def time_left(when: datetime, now: datetime | None = None) -> str:
    seconds = (when - (now or utc_now())).total_seconds()
    minutes = max(0, round(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return f"{days}d {hours}h {minutes}m" if days else f"{hours}h {minutes}m"


def countdown(when: datetime, now: datetime | None = None) -> str:
    return (
        f"deletes itself at {local_time(when, now)} (in {time_left(when, now)}) "
        "unless you run invoke extend"
    )


def schedule_name(stack_name: str) -> str:
    """The schedule is named after the stack (both at most 64 characters, same alphabet)."""
    return stack_name


def role_name(lab_name: str, region: str) -> str:
    """`lab-<name>-ttl-<region>`: IAM names are account-wide, labs are per region. Long names keep
    a digest so that two labs never share a role."""
    name = f"lab-{lab_name}-ttl-{region}"
    if len(name) <= ROLE_NAME_MAX:
        return name
    digest = hashlib.sha256(f"{lab_name}/{region}".encode()).hexdigest()[:8]
    keep = ROLE_NAME_MAX - len(f"lab--{digest}-ttl-{region}")
    return f"lab-{lab_name[:keep]}-{digest}-ttl-{region}"


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def role_arn(account: str, lab_name: str, region: str) -> str:
    return f"arn:{partition(region)}:iam::{account}:role/{role_name(lab_name, region)}"


def schedule_request(stack_name: str, when: datetime, role: str, region: str) -> dict[str, Any]:
    """CreateSchedule/UpdateSchedule parameters. UpdateSchedule replaces every field (unset ones
    fall back to their defaults, ActionAfterCompletion to NONE), so both send the whole request."""
    return {
        "Name": schedule_name(stack_name),
        "GroupName": "default",
        "Description": f"{TOOLKIT}: deletes stack {stack_name} at its deadline",
        "ScheduleExpression": at_expression(when),
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "ActionAfterCompletion": "DELETE",
        "Target": {
            "Arn": DELETE_STACK_TARGET.format(partition=partition(region)),
            "RoleArn": role,
            "Input": json.dumps({"StackName": stack_name}),
            "RetryPolicy": dict(RETRY_POLICY),
        },
    }


def is_ours(schedule: dict[str, Any], stack_name: str, role: str) -> bool:
    """A schedule of this name is ours when it deletes this stack as this lab's role."""
    target = schedule.get("Target", {})
    try:
        stack = json.loads(target.get("Input") or "{}").get("StackName")
    except ValueError:
        return False
    return target.get("Arn", "").endswith(":aws-sdk:cloudformation:deleteStack") and (
        stack == stack_name and target.get("RoleArn") == role
    )
