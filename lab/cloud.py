"""The cloud: boto3 calls for identity, key pairs and the lab's CloudFormation stack.

`AWS_ENDPOINT_URL` and the credential chain (profiles, SSO, `AWS_PROFILE`) work as boto3
defines them; tests point the endpoint at a moto server.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    TokenRetrievalError,
)

from lab import TOOLKIT
from lab.errors import LabError, UsageError
from lab.waiting import wait_until

TAG_NAME, TAG_CREATED_BY, TAG_CREATED_AT, TAG_OWNER = (
    "lab:name",
    "lab:created-by",
    "lab:created-at",
    "lab:owner",
)
# Throttling and transient errors are retried by botocore itself (standard mode).
BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 6}, connect_timeout=5, read_timeout=30)
STACK_POLL = 5.0  # at most, per the CloudFormation console's own cadence
IGNORED_FAILURES = ("Resource creation cancelled", "Resource update cancelled")


@dataclass
class StackInfo:
    name: str
    stack_id: str
    status: str
    created: datetime
    tags: dict[str, str]
    outputs: dict[str, str]
    reason: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def ours(self) -> bool:
        return self.tags.get(TAG_CREATED_BY) == TOOLKIT

    @property
    def in_progress(self) -> bool:
        return self.status.endswith("_IN_PROGRESS")


class Cloud:
    def __init__(self, region: str, profile: str | None = None) -> None:
        try:
            self.session = boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound:
            raise UsageError(
                f"AWS profile '{profile}' not found", "check `aws configure list-profiles`"
            ) from None
        known = self.session.get_available_regions("ec2") + self.session.get_available_regions(
            "ec2", "aws-cn"
        )
        if region not in known:
            raise UsageError(f"unknown AWS region '{region}'", "use a region code such as ap-northeast-2")
        self.region = region
        self.cfn = self.session.client("cloudformation", config=BOTO_CONFIG)
        self.ec2 = self.session.client("ec2", config=BOTO_CONFIG)
        self.sts = self.session.client("sts", config=BOTO_CONFIG)

    # -- identity ----------------------------------------------------------------------------
    def caller(self) -> dict[str, str]:
        """The STS caller identity; the one call that proves the credentials work."""
        with aws_errors():
            identity = self.sts.get_caller_identity()
        return {"arn": identity["Arn"], "account": identity["Account"]}

    # -- key pairs ---------------------------------------------------------------------------
    def key_pair(self, name: str) -> dict[str, Any] | None:
        try:
            with aws_errors(not_found=("InvalidKeyPair.NotFound",)):
                pairs = self.ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"]
        except _NotFound:
            return None
        return pairs[0] if pairs else None

    def create_key_pair(self, name: str, tags: dict[str, str]) -> str:
        """Create an ed25519 key pair and return its private key (shown once by AWS)."""
        with aws_errors():
            reply = self.ec2.create_key_pair(
                KeyName=name,
                KeyType="ed25519",
                TagSpecifications=[{"ResourceType": "key-pair", "Tags": _tag_list(tags)}],
            )
        return reply["KeyMaterial"]

    def delete_key_pair(self, name: str) -> None:
        with aws_errors():
            self.ec2.delete_key_pair(KeyName=name)

    # -- stacks ------------------------------------------------------------------------------
    def stack(self, name_or_id: str) -> StackInfo | None:
        try:
            with aws_errors(not_found=("ValidationError",)):
                stacks = self.cfn.describe_stacks(StackName=name_or_id)["Stacks"]
        except _NotFound:
            return None
        return _stack_info(stacks[0]) if stacks else None

    def lab_stacks(self) -> list[StackInfo]:
        """Every stack this toolkit created in the region (forgotten labs included)."""
        with aws_errors():
            pages = self.cfn.get_paginator("describe_stacks").paginate()
            stacks = [_stack_info(s) for page in pages for s in page["Stacks"]]
        return [s for s in stacks if s.ours and s.status != "DELETE_COMPLETE"]

    def create_stack(self, name: str, template: str, parameters: dict[str, str], tags: dict[str, str]) -> str:
        with aws_errors():
            reply = self.cfn.create_stack(
                StackName=name,
                TemplateBody=template,
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                Tags=_tag_list(tags),
                # The deadline's role (lab/deadline.py) has a name of our choosing.
                Capabilities=["CAPABILITY_NAMED_IAM"],
                TimeoutInMinutes=30,
                OnFailure="ROLLBACK",
            )
        return reply["StackId"]

    def update_stack(self, stack_id: str, template: str, parameters: dict[str, str | None]) -> None:
        """Update with a new template; a parameter given as None keeps its previous value."""
        with aws_errors():
            self.cfn.update_stack(
                StackName=stack_id,
                TemplateBody=template,
                Parameters=[
                    {"ParameterKey": k, "UsePreviousValue": True}
                    if v is None
                    else {"ParameterKey": k, "ParameterValue": v}
                    for k, v in parameters.items()
                ],
            )

    def delete_stack(self, stack_id: str) -> None:
        with aws_errors():
            self.cfn.delete_stack(StackName=stack_id)

    def events(self, stack_id: str) -> list[dict[str, Any]]:
        """All events of the stack, oldest first."""
        with aws_errors():
            pages = self.cfn.get_paginator("describe_stack_events").paginate(StackName=stack_id)
            events = [e for page in pages for e in page["StackEvents"]]
        return sorted(events, key=lambda e: e["Timestamp"])

    def resources(self, stack_id: str) -> list[dict[str, Any]]:
        with aws_errors():
            return self.cfn.describe_stack_resources(StackName=stack_id)["StackResources"]

    def wait_for_stack(
        self,
        stack_id: str,
        *,
        done: tuple[str, ...],
        timeout: float,
        on_event: Callable[[dict[str, Any]], None],
    ) -> StackInfo:
        """Poll until the stack leaves *_IN_PROGRESS, streaming new events as they arrive."""
        seen: set[str] = set()

        def settled() -> StackInfo | None:
            for event in self.events(stack_id):
                if event["EventId"] not in seen:
                    seen.add(event["EventId"])
                    on_event(event)
            info = self.stack(stack_id)
            if info is None or not info.in_progress:
                return info or StackInfo(stack_id, stack_id, "DELETE_COMPLETE", datetime.now(), {}, {})
            return None

        info = wait_until(settled, timeout=timeout, interval=STACK_POLL, first=1.0, what=f"stack {stack_id}")
        if info.status not in done:
            raise LabError(
                f"stack {info.name} ended in {info.status}: {first_failure(self.events(stack_id)) or info.reason}",
                "see the events above; `invoke down` removes what is left",
            )
        return info

    # -- instances ---------------------------------------------------------------------------
    def instance_names(self, stack_id: str) -> dict[str, str]:
        """Node name (the instance's Name tag) -> instance id, for the stack's instances."""
        ids = [
            r["PhysicalResourceId"]
            for r in self.resources(stack_id)
            if r["ResourceType"] == "AWS::EC2::Instance"
        ]
        if not ids:
            return {}
        with aws_errors():
            reply = self.ec2.describe_instances(InstanceIds=ids)
        names: dict[str, str] = {}
        for reservation in reply["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                names[tags.get("Name", instance["InstanceId"])] = instance["InstanceId"]
        return names

    def instance_states(self, instance_ids: list[str]) -> dict[str, str]:
        if not instance_ids:
            return {}
        with aws_errors():
            pages = self.ec2.get_paginator("describe_instances").paginate(InstanceIds=instance_ids)
            return {
                i["InstanceId"]: i["State"]["Name"]
                for p in pages
                for r in p["Reservations"]
                for i in r["Instances"]
            }


def format_event(event: dict[str, Any]) -> str:
    when = event["Timestamp"].strftime("%H:%M:%S")
    reason = f": {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
    return f"{when} {event['ResourceType']} {event['LogicalResourceId']} {event['ResourceStatus']}{reason}"


def first_failure(events: list[dict[str, Any]]) -> str | None:
    """The earliest real failure: CloudFormation cancels siblings after the first one fails."""
    for event in events:
        reason = event.get("ResourceStatusReason") or ""
        if event.get("ResourceStatus", "").endswith("_FAILED") and not reason.startswith(IGNORED_FAILURES):
            return f"{event.get('LogicalResourceId')}: {reason or event['ResourceStatus']}"
    return None


def detect_public_ip(timeout: float = 5.0) -> str:
    """The caller's public IPv4 as AWS sees it, over HTTPS."""
    try:
        with urllib.request.urlopen("https://checkip.amazonaws.com", timeout=timeout) as reply:
            text = reply.read(64).decode().strip()
        return str(ipaddress.IPv4Address(text))
    except (OSError, ValueError):
        raise LabError(
            "could not detect your public IP to restrict SSH to it",
            "pass --ssh-cidr YOUR.IP.ADDRESS/32 (or set LAB_SSH_CIDR)",
        ) from None


class _NotFound(Exception):
    pass


class aws_errors:
    """Turn boto errors into one-line LabErrors with a fix."""

    def __init__(self, not_found: tuple[str, ...] = ()) -> None:
        self.not_found = not_found

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: object) -> bool:
        if error is None:
            return False
        if isinstance(error, NoCredentialsError | PartialCredentialsError):
            raise LabError(
                "no AWS credentials found",
                "run `aws configure` or `aws sso login`, or set AWS_PROFILE",
            ) from None
        if isinstance(error, TokenRetrievalError):
            raise LabError("your AWS SSO session has expired", "run `aws sso login`") from None
        if isinstance(error, NoRegionError):
            raise UsageError("no AWS region set", "pass --region or set LAB_REGION") from None
        if isinstance(error, EndpointConnectionError):
            raise LabError(f"cannot reach AWS: {error}", "check your network or AWS_ENDPOINT_URL") from None
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", str(error))
            if code in self.not_found and (code != "ValidationError" or "does not exist" in message):
                raise _NotFound(code) from None
            if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
                raise LabError(
                    "your AWS credentials have expired", "refresh them (`aws sso login`)"
                ) from None
            if code in (
                "InvalidClientTokenId",
                "SignatureDoesNotMatch",
                "UnrecognizedClientException",
            ):
                raise LabError(
                    "AWS rejected your credentials", "check `aws sts get-caller-identity`"
                ) from None
            if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
                raise LabError(
                    f"AWS denied the request: {message}",
                    "your IAM user or role needs that permission",
                ) from None
            raise LabError(f"AWS error {code}: {message}") from None
        if isinstance(error, BotoCoreError):
            raise LabError(f"AWS client error: {error}") from None
        return False


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _stack_info(stack: dict[str, Any]) -> StackInfo:
    return StackInfo(
        name=stack["StackName"],
        stack_id=stack["StackId"],
        status=stack["StackStatus"],
        created=stack["CreationTime"],
        tags={t["Key"]: t["Value"] for t in stack.get("Tags", [])},
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        reason=stack.get("StackStatusReason"),
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])},
    )
