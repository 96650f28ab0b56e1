"""The AWS half of the lifecycle, through the real CLI, against moto."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import boto3
from cfn_helpers import DUMMY_CREDENTIALS, REGION, remove_route_tables


def _clients(endpoint: str) -> tuple:
    kw = {"endpoint_url": endpoint, "region_name": REGION, **DUMMY_CREDENTIALS}
    return boto3.client("cloudformation", **kw), boto3.client("ec2", **kw)


def _one_line_error(result) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "→" in errors[0], "the error line says how to fix it"


def test_up_until_stack_then_status_then_down(cli, moto_aws: str, lab_home: Path) -> None:
    cfn, ec2 = _clients(moto_aws)
    up = cli("up", "--until", "stack")
    assert up.returncode == 0, up.stderr
    assert "✓ Creating the CloudFormation stack" in up.stdout

    stack = cfn.describe_stacks(StackName="lab-egress")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
    assert tags["lab:created-by"] == "istio-egress-lab" and tags["lab:name"] == "egress"
    assert tags["lab:owner"].startswith("arn:aws:sts::") and tags["lab:created-at"]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["SshCidr"] == "127.0.0.1/32"

    state_file = lab_home / "egress" / "state.json"
    state = json.loads(state_file.read_text())
    assert state["stack_id"] == stack["StackId"]
    assert set(state["nodes"]) == {"k3s-s", "k3s-w1", "k3s-w2", "testpc"}
    assert state["nodes"]["k3s-s"]["private_ip"] == "192.168.10.10"
    assert state["spec"]["k3s_version"] == "v1.30.5+k3s1" and state["spec"]["istio_version"] == "1.23.2"
    assert [s for s in state["steps"]] == ["preflight", "key-pair", "stack"]
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    key = lab_home / "egress" / "lab-egress.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in key.read_text()
    token = params["K3sToken"]
    assert len(token) == 64, "a random join token, generated per lab"
    written = "".join(f.read_text() for f in lab_home.rglob("*") if f.is_file())
    assert token not in written + up.stdout + up.stderr, "the token is never stored or printed"

    status = cli("status")
    assert status.returncode == 0, status.stderr
    instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert len(instances) == 4
    for instance in instances:
        name = next(t["Value"] for t in instance["Tags"] if t["Key"] == "Name")
        row = next(line for line in status.stdout.splitlines() if line.startswith(name + " "))
        assert instance["PrivateIpAddress"] in row and instance["InstanceId"] in row, row
        assert instance["PublicIpAddress"] in row, row
    assert status.stdout.count("running") == 4
    assert "USD/h" in status.stdout

    remove_route_tables(ec2, _vpc_of(cfn))  # moto cannot delete route tables through CloudFormation
    down = cli("down")
    assert down.returncode == 0, down.stderr + down.stdout
    assert "4 instances terminated" in down.stdout
    assert not [s for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"]
    reservations = ec2.describe_instances()["Reservations"]
    assert {i["State"]["Name"] for r in reservations for i in r["Instances"]} == {"terminated"}
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert not (lab_home / "egress").exists() and list((lab_home / "archive").iterdir())

    again = cli("down")
    assert again.returncode == 0
    assert "Nothing to delete" in again.stdout


def _vpc_of(cfn) -> str:
    resources = cfn.describe_stack_resources(StackName="lab-egress")["StackResources"]
    return next(r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::EC2::VPC")


def test_second_up_reuses_the_stack(cli, moto_aws: str) -> None:
    cfn, _ = _clients(moto_aws)
    assert cli("up", "--until", "stack").returncode == 0
    again = cli("up", "--until", "stack")
    assert again.returncode == 0, again.stderr
    assert "Creating the CloudFormation stack (already done" in again.stdout
    assert len(cfn.describe_stacks()["Stacks"]) == 1


def test_down_refuses_a_stack_it_did_not_create(cli, moto_aws: str) -> None:
    cfn, _ = _clients(moto_aws)
    template = '{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}'
    cfn.create_stack(StackName="lab-egress", TemplateBody=template)
    down = cli("down")
    _one_line_error(down)
    assert "lab:created-by" in down.stderr
    assert cfn.describe_stacks(StackName="lab-egress")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    up = cli("up", "--until", "stack")
    _one_line_error(up)
    assert "not tagged lab:created-by" in up.stderr


def test_up_without_credentials_fails_fast_with_one_line(offline_cli) -> None:
    # The timeout is a hang guard for the "fails in under 10 s" promise, not a benchmark.
    result = offline_cli("up", timeout=10)
    _one_line_error(result)
    assert "no AWS credentials" in result.stderr


def test_plan_needs_no_credentials(offline_cli) -> None:
    result = offline_cli("plan")
    assert result.returncode == 0, result.stderr
    assert "AWS::EC2::Instance" in result.stdout and "192.168.10.10" in result.stdout
    assert "USD/h" in result.stdout and "1.23.2" in result.stdout


def test_user_mistakes_get_one_line(cli, tmp_path: Path) -> None:
    loose = tmp_path / "loose.pem"
    loose.write_text("not a key")
    loose.chmod(0o644)
    cases = [
        (("up", "--ssh-cidr", "300.1.2.3/32"), "not an IPv4 CIDR"),
        (("up", "--ssh-cidr", "10.0.0.0/8"), "--allow-wide-ssh"),
        (("up", "--ssh-cidr", "0.0.0.0/0", "--allow-wide-ssh"), "whole internet"),
        (("up", "--key-name", "nope", "--key-file", str(loose)), "chmod 600"),
        (("up", "--key-name", "nope"), "go together"),
        (("up", "--region", "mars-north-1"), "unknown AWS region"),
        (("up", "--until", "coffee"), "unknown step"),
    ]
    for args, expected in cases:
        result = cli(*args)
        _one_line_error(result)
        assert expected in result.stderr, (args, result.stderr)


def test_missing_key_pair_is_named(cli, tmp_path: Path) -> None:
    key = tmp_path / "mine.pem"
    key.write_text("x")
    key.chmod(0o600)
    result = cli("up", "--key-name", "mine", "--key-file", str(key))
    _one_line_error(result)
    assert "key pair 'mine' not found" in result.stderr


def test_debug_shows_the_traceback(cli) -> None:
    result = cli("up", "--until", "coffee", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_resume_refuses_settings_it_cannot_change(cli) -> None:
    assert cli("up", "--until", "stack").returncode == 0
    for args, what in [
        (("--istio-version", "1.24.0"), "istio_version=1.23.2"),
        (("--region", "us-east-1"), "region=ap-northeast-2"),
        (("--ssh-cidr", "127.0.0.2/32"), "ssh_cidr=127.0.0.1/32"),
        (("--instance-type", "t3.large"), "instance_type=t3.medium"),
    ]:
        result = cli("up", "--until", "stack", *args)
        _one_line_error(result)
        assert what in result.stderr, (args, result.stderr)
    assert cli("up", "--until", "stack").returncode == 0, "resuming with no flags still works"


def test_an_existing_private_key_is_never_overwritten(cli, moto_aws: str, lab_home: Path) -> None:
    assert cli("up", "--until", "key-pair").returncode == 0
    key = lab_home / "egress" / "lab-egress.pem"
    before = key.read_text()
    _, ec2 = _clients(moto_aws)
    ec2.delete_key_pair(KeyName="lab-egress")
    result = cli("up", "--until", "key-pair")
    _one_line_error(result)
    assert "exists but key pair 'lab-egress' is not in" in result.stderr
    assert key.read_text() == before


def test_down_without_local_state_still_removes_its_key_pair(cli, moto_aws: str, lab_home: Path) -> None:
    import shutil

    assert cli("up", "--until", "key-pair").returncode == 0
    shutil.rmtree(lab_home / "egress")
    _, ec2 = _clients(moto_aws)
    ec2.create_key_pair(KeyName="someone-elses")
    down = cli("down")
    assert down.returncode == 0, down.stderr
    assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == ["someone-elses"]


def test_plan_and_up_refuse_an_instance_type_the_template_does_not_allow(cli, offline_cli) -> None:
    for run, args in ((offline_cli, ("plan",)), (cli, ("up",))):
        result = run(*args, "--instance-type", "t2.micro")
        _one_line_error(result)
        assert "t3.medium" in result.stderr, "the error lists the supported types"
