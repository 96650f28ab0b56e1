"""The CloudFormation template: where it lives, how to read it, and its parameters."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml

from lab.deadline import role_name
from lab.errors import UsageError
from lab.spec import LabSpec

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "cloudformation" / "k3s-lab.yaml"
# Output key prefix of each node in the template's Outputs.
NODE_OUTPUTS = {"k3s-s": "K3sS", "k3s-w1": "K3sW1", "k3s-w2": "K3sW2", "testpc": "Testpc"}


def template_body() -> str:
    return TEMPLATE.read_text()


def parameters(spec: LabSpec) -> dict[str, str]:
    return {
        "LabName": spec.name,
        "InstanceType": spec.instance_type,
        "K3sVersion": spec.k3s_version,
        # A fresh random join token per lab, passed as a NoEcho parameter: never in our state or
        # output (it does reach the instances' user data, where k3s needs it).
        "K3sToken": secrets.token_hex(32),
        "SshCidr": spec.ssh_cidr,
        "KeyName": spec.key_name,
        "DeadlineRoleName": role_name(spec.name, spec.region),
    }


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short forms (!Ref, !Sub, ...) as their long forms."""


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _short_form)


def check_instance_type(instance_type: str) -> None:
    """The template admits a short list of x86_64 types: say so before anything is created."""
    allowed = load_template()["Parameters"]["InstanceType"]["AllowedValues"]
    if instance_type not in allowed:
        raise UsageError(
            f"instance type '{instance_type}' is not one the lab supports", f"use one of {', '.join(allowed)}"
        )


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # a SafeLoader subclass
