"""The lab's deadline through the real CLI against moto: what is sent to EventBridge Scheduler and
IAM, the life cycle around it, and the schedule fired as AWS would fire it.

moto stores schedules but never fires them; `_fire` does what Scheduler does at the deadline
(EventBridge Scheduler user guide, "Using universal targets": assume the target's role, call the
API named by the target ARN with the target's Input as its parameters; then, with
ActionAfterCompletion DELETE, delete the schedule).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.exceptions import ClientError
from cfn_helpers import DUMMY_CREDENTIALS, REGION
from moto.iam.access_control import IAMPolicy, PermissionResult

from tests.labsim import moto_fixes

SEOUL = ZoneInfo("Asia/Seoul")
DELETE_STACK = "arn:aws:scheduler:::aws-sdk:cloudformation:deleteStack"
AT = re.compile(r"at\((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\)")


@pytest.fixture(autouse=True)
def _moto_as_aws() -> None:
    """moto with the two behaviours of AWS it lacks (tests/labsim/moto_fixes.py)."""
    moto_fixes.apply()


@pytest.fixture
def seoul(cli):
    """The CLI with the learner's clock in Seoul (KST), as in the issue's example."""
    return lambda *args, **kw: cli(*args, extra={"TZ": "Asia/Seoul"}, **kw)


def _client(endpoint: str, service: str, **credentials: str):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, **(credentials or DUMMY_CREDENTIALS)
    )


def _schedule(endpoint: str, name: str = "lab-egress") -> dict:
    return _client(endpoint, "scheduler").get_schedule(Name=name)


def _due(schedule: dict) -> datetime:
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    match = AT.fullmatch(schedule["ScheduleExpression"])
    assert match, schedule["ScheduleExpression"]
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=timezone.utc)


def _schedules(endpoint: str) -> list[str]:
    return [s["Name"] for s in _client(endpoint, "scheduler").list_schedules()["Schedules"]]


def _roles(endpoint: str) -> list[str]:
    return [r["RoleName"] for r in _client(endpoint, "iam").list_roles()["Roles"]]


def _one_line_error(result) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "→" in errors[0], "the error line says how to fix it"
    return errors[0]


def _fire(endpoint: str, schedule: dict) -> None:
    """What EventBridge Scheduler does at the deadline."""
    target = schedule["Target"]
    service, action = target["Arn"].split(":aws-sdk:", 1)[1].split(":")
    session = _client(endpoint, "sts").assume_role(
        RoleArn=target["RoleArn"], RoleSessionName="scheduler"
    )["Credentials"]
    client = _client(
        endpoint,
        service,
        aws_access_key_id=session["AccessKeyId"],
        aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"],
    )
    operation = re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()  # deleteStack -> delete_stack
    getattr(client, operation)(**json.loads(target["Input"]))
    if schedule["ActionAfterCompletion"] == "DELETE":
        _client(endpoint, "scheduler").delete_schedule(Name=schedule["Name"])


def test_up_sends_a_one_time_delete_stack_schedule_and_prints_its_deadline(seoul, moto_aws: str) -> None:
    before = datetime.now(timezone.utc)
    up = seoul("up", "--until", "stack")
    after = datetime.now(timezone.utc)
    assert up.returncode == 0, up.stderr
    schedule = _schedule(moto_aws)
    stack = _client(moto_aws, "cloudformation").describe_stacks(StackName="lab-egress")["Stacks"][0]

    target = schedule["Target"]
    assert target["Arn"] == DELETE_STACK
    assert json.loads(target["Input"]) == {"StackName": "lab-egress"}
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["State"] == "ENABLED"
    due = _due(schedule)
    assert before + timedelta(hours=6) <= due <= after + timedelta(hours=6, seconds=1), "default TTL 6h"

    role_name = target["RoleArn"].rsplit("/", 1)[1]
    role = _client(moto_aws, "iam").get_role(RoleName=role_name)["Role"]
    assert role["Arn"] == target["RoleArn"], "the schedule runs as the role the stack created"
    assert role_name == "lab-egress-ttl-ap-northeast-2", "the role's name ties it to the lab and region"
    resources = _client(moto_aws, "cloudformation").describe_stack_resources(StackName="lab-egress")
    kinds = {r["LogicalResourceId"]: r["ResourceType"] for r in resources["StackResources"]}
    assert kinds["DeadlineRole"] == "AWS::IAM::Role", "the role is in the stack, deleted with it"
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "scheduler.amazonaws.com"}]
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    account = stack["StackId"].split(":")[4]
    # Scheduler's confused-deputy guide: SourceArn is the schedule's group, never the schedule.
    assert condition["aws:SourceArn"] == schedule["Arn"].split(":schedule/")[0] + ":schedule-group/default"
    assert condition["aws:SourceAccount"] == account
    # Scheduler's RoleArn pattern: role/NAME or role/service-role/NAME, no other path.
    assert re.fullmatch(rf"arn:aws:iam::{account}:role/(service-role/)?[A-Za-z0-9+=,.@_-]+", target["RoleArn"])

    last = up.stdout.strip().splitlines()[-1]
    local = due.astimezone(SEOUL)
    clock = f"{local:%H:%M} KST" if local.date() == after.astimezone(SEOUL).date() else f"{local:%a %d %b %H:%M} KST"
    assert last == f"Lab 'egress' deletes itself at {clock} (in 6h 0m) unless you run invoke extend.", last


def test_the_role_can_delete_this_stack_and_no_other_and_goes_with_down(cli, moto_aws: str) -> None:
    assert cli("up", "--until", "stack").returncode == 0
    cfn, iam = _client(moto_aws, "cloudformation"), _client(moto_aws, "iam")
    stack_id = cfn.describe_stacks(StackName="lab-egress")["Stacks"][0]["StackId"]
    role_name = _schedule(moto_aws)["Target"]["RoleArn"].rsplit("/", 1)[1]
    names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    documents = [iam.get_role_policy(RoleName=role_name, PolicyName=n)["PolicyDocument"] for n in names]
    documents = [d if isinstance(d, str) else json.dumps(d) for d in documents]
    assert documents, "the role has its policy"

    def allowed(action: str, resource: str) -> bool:
        return any(IAMPolicy(d).is_action_permitted(action, resource) == PermissionResult.PERMITTED for d in documents)

    account = stack_id.split(":")[4]
    others = [
        f"arn:aws:cloudformation:{REGION}:{account}:stack/lab-other/0a1b2c3d-0000-4000-8000-000000000000",
        # the same name again: a later lab, or the same stack name in another region or account
        stack_id.rsplit("/", 1)[0] + "/0a1b2c3d-0000-4000-8000-000000000001",
        stack_id.replace(REGION, "us-east-1"),
        stack_id.replace(f":{account}:", ":999999999999:"),
    ]
    actions = [
        "cloudformation:DeleteStack",
        "cloudformation:UpdateStack",
        "cloudformation:CreateStack",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:SetStackPolicy",
        "cloudformation:CancelUpdateStack",
        "cloudformation:DescribeStacks",
    ]
    assert allowed("cloudformation:DeleteStack", stack_id)
    for other in others:
        for action in actions:
            assert not allowed(action, other), (action, other)
    assert not allowed("cloudformation:UpdateStack", stack_id), "deleting is all it may do to its own stack"
    for document in documents:
        for statement in json.loads(document)["Statement"]:
            acts = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if any(a.startswith("cloudformation:") for a in acts):
                assert resources == [stack_id], "no wildcard in CloudFormation resources"
            if any(a in ("ec2:TerminateInstances", "ec2:DeleteVpc") for a in acts):
                assert statement["Condition"]["StringEquals"] == {"aws:ResourceTag/lab:name": "egress"}
            if any(a.startswith("iam:") for a in acts):
                assert resources == [f"arn:aws:iam::{account}:role/{role_name}"]

    down = cli("down")
    assert down.returncode == 0, down.stderr + down.stdout
    assert _schedules(moto_aws) == [] and role_name not in _roles(moto_aws), "down deletes both"
    assert "deadline schedule and role gone" in down.stdout


def test_extend_moves_the_deadline_and_keeps_it_self_deleting(seoul, moto_aws: str) -> None:
    assert seoul("up", "--until", "stack", "--ttl", "90m").returncode == 0
    first = _due(_schedule(moto_aws))
    now = datetime.now(timezone.utc)
    assert now + timedelta(minutes=89) <= first <= now + timedelta(minutes=91)

    extend = seoul("extend", "--ttl", "2h")
    assert extend.returncode == 0, extend.stderr
    schedule = _schedule(moto_aws)
    moved = _due(schedule)
    now = datetime.now(timezone.utc)
    assert now + timedelta(minutes=119) <= moved <= now + timedelta(minutes=121)
    assert schedule["ActionAfterCompletion"] == "DELETE", "UpdateSchedule replaces the whole schedule"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert json.loads(schedule["Target"]["Input"]) == {"StackName": "lab-egress"}
    assert f"{moved.astimezone(SEOUL):%H:%M} KST (in 2h 0m)" in extend.stdout

    status = seoul("status")
    assert status.returncode == 0, status.stderr
    line = next(x for x in status.stdout.splitlines() if x.startswith("Deadline:"))
    assert f"{moved.astimezone(SEOUL):%H:%M} KST (in 2h 0m)" in line, line
    assert "USD/h" in status.stdout and "so far" in status.stdout

    again = seoul("extend")
    assert again.returncode == 0, again.stderr
    back = _due(_schedule(moto_aws))
    now = datetime.now(timezone.utc)
    assert now + timedelta(minutes=89) <= back <= now + timedelta(minutes=91), "default: the lab's own TTL"


def test_ttl_none_warns_with_the_daily_cost_and_status_all_marks_it(cli, moto_aws: str, lab_home: Path) -> None:
    up = cli("up", "--until", "stack", "--ttl", "none")
    assert up.returncode == 0, up.stderr
    # 4 × t3.medium 0.052 + 4 IPv4 × 0.005 + 4 × 30 GiB gp3 at 0.0912/GB-month over 730 h, × 24 h
    assert "5.83 USD a day" in up.stdout
    assert _schedules(moto_aws) == []
    assert cli("up", "--until", "stack", extra={"LAB_NAME": "timed", "LAB_TTL": "2d"}).returncode == 0
    now = datetime.now(timezone.utc)
    # at() holds whole seconds, rounded up (lab/deadline.py): up to 1 s past the exact instant
    due = _due(_schedule(moto_aws, "lab-timed"))
    assert now + timedelta(days=2) - timedelta(seconds=30) <= due <= now + timedelta(days=2, seconds=1)
    table = cli("status", "--all")
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line for line in table.stdout.splitlines() if line.startswith(("egress ", "timed "))}
    assert "none (!)" in rows["egress"] and "none" not in rows["timed"]
    assert "(in 2d 0h 0m)" in rows["timed"], rows["timed"]
    assert "have no deadline" in table.stdout

    status = cli("status")
    assert "Deadline: none" in status.stdout and "5.83 USD a day" in status.stdout
    extend = cli("extend", "--ttl", "4h")
    assert extend.returncode == 0, extend.stderr
    assert sorted(_schedules(moto_aws)) == ["lab-egress", "lab-timed"], "extend gives a none lab a deadline"


@pytest.mark.parametrize("first", ["status", "up", "down", "extend"])
def test_the_fired_schedule_deletes_the_whole_lab(cli, moto_aws: str, lab_home: Path, first: str) -> None:
    assert cli("up", "--until", "stack").returncode == 0
    cfn, ec2 = _client(moto_aws, "cloudformation"), _client(moto_aws, "ec2")
    stack_id = cfn.describe_stacks(StackName="lab-egress")["Stacks"][0]["StackId"]
    schedule = _schedule(moto_aws)
    role_name = schedule["Target"]["RoleArn"].rsplit("/", 1)[1]

    _fire(moto_aws, schedule)

    assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert len(instances) == 4 and {i["State"]["Name"] for i in instances} == {"terminated"}
    assert ec2.describe_addresses()["Addresses"] == [], "no Elastic IP left to bill"
    assert [v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")] == []
    assert _schedules(moto_aws) == [] and role_name not in _roles(moto_aws)
    if first == "status":
        listed = cli("status", "--all")
        assert listed.returncode == 0 and "No lab stacks" in listed.stdout, listed.stdout

    after = cli(first, *(("--until", "stack") if first == "up" else ()))
    if first == "extend":
        assert "its deadline deleted it" in _one_line_error(after), "extend refuses a lab that is gone"
    else:
        assert after.returncode == 0, after.stderr + after.stdout
    assert "outlived its stack" not in after.stdout, "the leftover check finds nothing"
    if first != "down":
        assert "was deleted by its TTL at" in after.stdout
    assert list((lab_home / "archive").iterdir()), "the local state is archived as down would"
    pairs = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
    if first == "up":
        new = cfn.describe_stacks(StackName="lab-egress")["Stacks"][0]
        assert new["StackId"] != stack_id and new["StackStatus"] == "CREATE_COMPLETE", "up creates a new lab"
        assert _schedules(moto_aws) == ["lab-egress"] and _due(_schedule(moto_aws)) > datetime.now(timezone.utc)
        assert pairs == ["lab-egress"], "the new lab's key pair only"
    else:
        assert pairs == [], "the key pair up created is removed"
        assert not (lab_home / "egress").exists()
        again = cli("down")
        assert again.returncode == 0 and "Nothing to delete" in again.stdout


def test_bad_ttls_are_one_line_errors_and_create_nothing(cli, moto_aws: str, lab_home: Path) -> None:
    for ttl, expected in [
        # not a duration at all: refused by the settings check (lab/config.py), naming the flag
        ("0", "--ttl: '0' is not a duration such as 30m, 6h or 2d, or none"),
        ("-1h", "--ttl: '-1h' is not a duration such as 30m, 6h or 2d, or none"),
        ("10x", "--ttl: '10x' is not a duration such as 30m, 6h or 2d, or none"),
        ("400d", "longer than the maximum 7d"),
        ("10m", "shorter than the minimum 30m"),
    ]:
        error = _one_line_error(cli("up", "--ttl", ttl))
        assert expected in error, error
    ec2 = _client(moto_aws, "ec2")
    assert _client(moto_aws, "cloudformation").describe_stacks()["Stacks"] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == [] and _schedules(moto_aws) == []
    assert not lab_home.exists() or not any(lab_home.rglob("*"))


def test_extend_without_a_lab_is_a_one_line_error(cli, offline_cli, moto_aws: str) -> None:
    error = _one_line_error(cli("extend", "--ttl", "2h"))
    assert "nothing to extend" in error
    assert _schedules(moto_aws) == []
    error = _one_line_error(offline_cli("extend", "--ttl", "400d"))
    assert "longer than the maximum 7d" in error, "a bad TTL is named before any AWS call"


def test_extend_refuses_a_stack_that_is_not_ours(cli, moto_aws: str) -> None:
    template = '{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}'
    _client(moto_aws, "cloudformation").create_stack(StackName="lab-egress", TemplateBody=template)
    error = _one_line_error(cli("extend"))
    assert "not tagged lab:created-by" in error
    assert _schedules(moto_aws) == []


def test_plan_shows_the_deadline_and_the_cost_up_to_it(offline_cli) -> None:
    plan = offline_cli("plan", "--ttl", "4h")
    assert plan.returncode == 0, plan.stderr
    line = next(x for x in plan.stdout.splitlines() if x.startswith("Deadline:"))
    assert "deletes itself 4h after `invoke up`" in line
    assert "about 0.97 USD" in line, "0.243 USD/h for 4 h"
    none = offline_cli("plan", extra={"LAB_TTL": "none"})
    assert "Deadline: none" in none.stdout and "5.83 USD a day" in none.stdout


def test_a_schedule_of_another_kind_with_the_labs_name_is_never_touched(cli, moto_aws: str) -> None:
    scheduler = _client(moto_aws, "scheduler")
    scheduler.create_schedule(
        Name="lab-egress",
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:sqs:ap-northeast-2:123456789012:q", "RoleArn": "arn:aws:iam::123456789012:role/x"},
    )
    error = _one_line_error(cli("up", "--until", "stack"))
    assert "does not delete this lab" in error
    assert _schedule(moto_aws)["ScheduleExpression"] == "rate(1 day)"


def test_a_stack_deleted_by_hand_is_not_called_deleted_by_its_ttl(cli, moto_aws: str) -> None:
    """Deleting the stack by hand leaves the schedule: status does not claim the TTL did it."""
    assert cli("up", "--until", "stack").returncode == 0
    cfn = _client(moto_aws, "cloudformation")
    cfn.delete_stack(StackName="lab-egress")
    status = cli("status")
    assert status.returncode == 0
    assert "deleted by its TTL" not in status.stdout and "No lab 'egress'" in status.stdout
    # a role kept back (say, the stack deleted with "retain" after its DeleteRole failed)
    _client(moto_aws, "iam").create_role(
        RoleName="lab-egress-ttl-ap-northeast-2", AssumeRolePolicyDocument="{}"
    )
    down = cli("down")
    assert down.returncode == 0, down.stderr
    assert _schedules(moto_aws) == [], "down removes the deadline that outlived its stack"
    assert "role lab-egress-ttl-ap-northeast-2 outlived its stack" in down.stdout, down.stdout
    with pytest.raises(ClientError):
        _schedule(moto_aws)


def test_resuming_up_keeps_the_deadline(cli, moto_aws: str) -> None:
    assert cli("up", "--until", "stack", "--ttl", "90m").returncode == 0
    first = _due(_schedule(moto_aws))
    again = cli("up", "--until", "stack", "--ttl", "4h")
    assert again.returncode == 0, again.stderr
    assert _due(_schedule(moto_aws)) == first
    assert "`invoke extend --ttl 4h` moves it" in again.stdout
    assert cli("up", "--until", "stack", "--ttl", "none", extra={"LAB_NAME": "open"}).returncode == 0
    resumed = cli("up", "--until", "stack", "--ttl", "2h", extra={"LAB_NAME": "open"})
    assert "`invoke extend --ttl 2h` sets one" in resumed.stdout
    assert _schedules(moto_aws) == ["lab-egress"], "up never changes a running lab's deadline"
