"""Helpers for tests that deploy the lab template on an in-process moto server.

moto keeps its state in module globals, so the server must run in the test process
(`ThreadedMotoServer`) for `seed_ubuntu_ami` to reach it. Every helper talks to moto
through boto3 with explicit dummy credentials; nothing here can reach real AWS.
"""

from __future__ import annotations

import datetime
import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer
from moto.ssm.models import Parameter, ssm_backends

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "cloudformation" / "k3s-lab.yaml"
REGION = "ap-northeast-2"
UBUNTU_AMI_PARAMETER = "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id"
# The study addresses, by the Name tag of each node.
STUDY_NODES = {
    "k3s-s": "192.168.10.10",
    "k3s-w1": "192.168.10.101",
    "k3s-w2": "192.168.10.102",
    "testpc": "192.168.10.200",
}
NODE_OUTPUT_PREFIX = {"k3s-s": "K3sS", "k3s-w1": "K3sW1", "k3s-w2": "K3sW2", "testpc": "Testpc"}
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@contextmanager
def moto_server() -> Iterator[str]:
    """Runs moto on a free loopback port and yields its endpoint URL."""
    # werkzeug logs every request; that drowns the report of a failing test.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def moto_env(endpoint: str, region: str = REGION) -> dict[str, str]:
    """Environment that points boto3 (and so the `lab` CLI) at moto."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": region,
    }


def aws_client(endpoint: str, service: str, region: str = REGION) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=region, **DUMMY_CREDENTIALS)


def reset_moto(endpoint: str) -> None:
    """Forgets every resource in every region (the SSM seed too)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def seed_ubuntu_ami(endpoint: str, region: str = REGION) -> str:
    """Makes the template's default AMI parameter resolvable and returns its AMI id.

    moto refuses PutParameter under /aws/ (a reserved path) and resolves an SSM-typed
    parameter's Default even when a value is passed, so the parameter is written into
    moto's SSM backend directly. The AMI is one moto already knows.
    """
    images = aws_client(endpoint, "ec2", region).describe_images(Owners=["099720109477"])
    ubuntu = [
        image
        for image in images["Images"]
        if image["Name"].startswith("ubuntu/images/") and image["Architecture"] == "x86_64"
    ]
    ami_id = ubuntu[0]["ImageId"]
    account = aws_client(endpoint, "sts", region).get_caller_identity()["Account"]
    ssm_backends[account][region]._parameters[UBUNTU_AMI_PARAMETER].append(
        Parameter(
            account_id=account,
            name=UBUNTU_AMI_PARAMETER,
            value=ami_id,
            parameter_type="String",
            description=None,
            allowed_pattern=None,
            keyid=None,
            last_modified_date=datetime.datetime.now(datetime.timezone.utc),
            version=1,
            data_type="aws:ec2:image",
        )
    )
    return ami_id


def stack_outputs(cfn: Any, stack: str) -> dict[str, str]:
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in described["Outputs"]}


def remove_route_tables(ec2: Any, vpc_id: str) -> None:
    """Deletes the VPC's own route tables, which moto cannot delete through CloudFormation.

    Without this, moto's DeleteStack fails with DependencyViolation on the VPC.
    """
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    for table in tables["RouteTables"]:
        if any(association.get("Main") for association in table["Associations"]):
            continue
        for association in table["Associations"]:
            ec2.disassociate_route_table(AssociationId=association["RouteTableAssociationId"])
        for route in table["Routes"]:
            if route.get("GatewayId") != "local" and "DestinationCidrBlock" in route:
                ec2.delete_route(
                    RouteTableId=table["RouteTableId"],
                    DestinationCidrBlock=route["DestinationCidrBlock"],
                )
        ec2.delete_route_table(RouteTableId=table["RouteTableId"])


def instances_by_name(ec2: Any, stack_name: str) -> dict[str, dict[str, Any]]:
    """The stack's instances (any state), keyed by their Name tag."""
    reservations = ec2.describe_instances(
        Filters=[{"Name": "tag:aws:cloudformation:stack-name", "Values": [stack_name]}]
    )["Reservations"]
    found: dict[str, dict[str, Any]] = {}
    for reservation in reservations:
        for instance in reservation["Instances"]:
            tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
            found[tags.get("Name", instance["InstanceId"])] = instance
    return found
