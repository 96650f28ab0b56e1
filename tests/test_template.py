"""The k3s lab template: lint-clean, secure by construction, and deployable on moto."""

from __future__ import annotations

import ipaddress
import re
import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from cfn_helpers import (
    NODE_OUTPUT_PREFIX,
    STUDY_NODES,
    TEMPLATE,
    aws_client,
    instances_by_name,
    remove_route_tables,
    stack_outputs,
)
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode

SSH_CIDR = {"Ref": "SshCidr"}
INTERNAL_CIDRS = {"192.168.0.0/16", "172.16.0.0/16"}
NODEPORTS = (30000, 32767)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, errors = decode(str(TEMPLATE))
    assert not errors, errors
    return decoded


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource.get("Properties", {})
        for name, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def inline_rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    groups = resources(template, "AWS::EC2::SecurityGroup").values()
    return [rule for group in groups for rule in group.get("SecurityGroupIngress", [])]


def ingress_rules(template: dict[str, Any]) -> list[dict[str, Any]]:
    return inline_rules(template) + list(resources(template, "AWS::EC2::SecurityGroupIngress").values())


def from_inside(rule: dict[str, Any]) -> bool:
    return isinstance(rule["CidrIp"], str) and rule["CidrIp"] in INTERNAL_CIDRS


def node_instances(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Instance properties keyed by their Name tag."""
    nodes = {}
    for props in resources(template, "AWS::EC2::Instance").values():
        tags = {tag["Key"]: tag["Value"] for tag in props.get("Tags", [])}
        nodes[tags["Name"]] = props
    return nodes


def launch_data(template: dict[str, Any], instance: dict[str, Any]) -> dict[str, Any]:
    reference = instance["LaunchTemplate"]["LaunchTemplateId"]["Ref"]
    return template["Resources"][reference]["Properties"]["LaunchTemplateData"]


def user_data(instance: dict[str, Any]) -> str:
    script = instance["UserData"]["Fn::Base64"]
    return script["Fn::Sub"] if isinstance(script, dict) else script


def test_cfn_lint_reports_nothing() -> None:
    config = ManualArgs(regions=["us-east-1", "ap-northeast-2"], include_checks=["I"])
    assert [str(match) for match in lint_file(TEMPLATE, config=config)] == []


def test_no_ingress_is_open_to_the_world(template: dict[str, Any]) -> None:
    rules = ingress_rules(template)
    assert rules
    for rule in rules:
        assert "CidrIpv6" not in rule and "SourcePrefixListId" not in rule, rule
        assert rule["CidrIp"] != "0.0.0.0/0"
        assert rule["CidrIp"] == SSH_CIDR or from_inside(rule), rule


def test_ssh_and_nodeports_are_reachable_only_from_the_user_cidr(
    template: dict[str, Any],
) -> None:
    external = [rule for rule in ingress_rules(template) if not from_inside(rule)]
    ports = sorted((rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) for rule in external)
    assert ports == [("tcp", 22, 22), ("tcp", *NODEPORTS)]
    assert all(rule["CidrIp"] == SSH_CIDR for rule in external)


def test_vpc_and_pod_networks_reach_everything_through_standalone_rules(
    template: dict[str, Any],
) -> None:
    standalone = resources(template, "AWS::EC2::SecurityGroupIngress").values()
    assert {(rule["IpProtocol"], rule["CidrIp"]) for rule in standalone} == {
        ("-1", cidr) for cidr in INTERNAL_CIDRS
    }
    # moto crashes on an inline all-protocol rule, so none may be inline.
    assert all(rule["IpProtocol"] != "-1" for rule in inline_rules(template))


def test_every_instance_requires_imdsv2(template: dict[str, Any]) -> None:
    for name, instance in node_instances(template).items():
        options = launch_data(template, instance)["MetadataOptions"]
        assert options["HttpTokens"] == "required", name
        assert options["HttpPutResponseHopLimit"] == 1, (
            f"{name}: pods must not reach IMDS (the join token is in user data)"
        )


def test_every_root_volume_is_encrypted_gp3(template: dict[str, Any]) -> None:
    for name, instance in node_instances(template).items():
        mappings = instance.get("BlockDeviceMappings") or launch_data(template, instance).get(
            "BlockDeviceMappings", []
        )
        assert [m["DeviceName"] for m in mappings] == ["/dev/sda1"], name
        ebs = mappings[0]["Ebs"]
        assert (ebs["VolumeType"], ebs["Encrypted"], ebs["VolumeSize"]) == ("gp3", True, 30)
    assert all(v.get("Encrypted") for v in resources(template, "AWS::EC2::Volume").values())


def test_join_token_is_a_secret_without_default(template: dict[str, Any]) -> None:
    token = template["Parameters"]["K3sToken"]
    assert token["NoEcho"] is True
    assert "Default" not in token
    assert token["MinLength"] >= 32
    # The toolkit's tokens (hex or URL-safe) must pass the template's constraints.
    for candidate in (secrets.token_hex(32), secrets.token_urlsafe(32)):
        assert token["MinLength"] <= len(candidate) <= token["MaxLength"]
        assert re.fullmatch(token["AllowedPattern"], candidate)
    assert "K3sToken" not in str(template["Outputs"])


def test_no_fixed_token_anywhere() -> None:
    text = TEMPLATE.read_text()
    assert re.findall(r"K3S_TOKEN=\S+", text) == ["K3S_TOKEN='${K3sToken}'"] * 3
    assert "--token" not in text
    # No literal that looks like a generated secret: a long run of letters and digits.
    assert re.findall(r"\b(?=[A-Za-z_-]*\d)(?=[\d_-]*[A-Za-z])[A-Za-z0-9_-]{24,}\b", text) == []


@pytest.mark.parametrize(
    ("cidr", "valid"),
    [
        ("203.0.113.7/32", True),
        ("10.0.0.0/8", True),
        ("256.1.1.1/32", False),
        ("1.2.3.4", False),
        ("1.2.3.4/33", False),
        ("::/0", False),
    ],
)
def test_ssh_cidr_parameter_accepts_only_ipv4_cidrs(template: dict[str, Any], cidr: str, valid: bool) -> None:
    pattern = template["Parameters"]["SshCidr"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, cidr)) is valid


def test_parameters_pin_the_study_defaults(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["InstanceType"]["Default"] == "t3.medium"
    assert params["K3sVersion"]["Default"] == "v1.30.5+k3s1"
    assert params["KeyName"]["Type"] == "AWS::EC2::KeyPair::KeyName"
    assert params["LatestAmiId"]["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert params["LatestAmiId"]["Default"].startswith("/aws/service/canonical/ubuntu/server/22.04/")


def test_four_named_nodes_at_the_study_addresses(template: dict[str, Any]) -> None:
    nodes = node_instances(template)
    assert {name: props["PrivateIpAddress"] for name, props in nodes.items()} == STUDY_NODES
    (vpc,) = resources(template, "AWS::EC2::VPC").values()
    (subnet,) = resources(template, "AWS::EC2::Subnet").values()
    assert (vpc["CidrBlock"], subnet["CidrBlock"]) == ("192.168.0.0/16", "192.168.10.0/24")
    assert subnet["MapPublicIpOnLaunch"] is True
    addressed = {eip["InstanceId"]["Ref"] for eip in resources(template, "AWS::EC2::EIP").values()}
    instance_ids = {n for n, r in template["Resources"].items() if r["Type"] == "AWS::EC2::Instance"}
    assert addressed == instance_ids


def test_nodes_boot_with_a_route_to_the_internet(template: dict[str, Any]) -> None:
    # User data downloads k3s at first boot, so the subnet's IGW route must exist by then.
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::EC2::Instance":
            assert {"DefaultRoute", "PublicSubnetRouteTableAssociation"} <= set(resource["DependsOn"]), name


def test_outputs_name_every_node_address(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    expected = {"VpcId"} | {
        f"{prefix}{kind}" for prefix in NODE_OUTPUT_PREFIX.values() for kind in ("PublicIp", "PrivateIp")
    }
    assert set(outputs) == expected
    by_logical_id = {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] in ("AWS::EC2::Instance", "AWS::EC2::EIP")
    }
    for node, prefix in NODE_OUTPUT_PREFIX.items():
        instance_id, attribute = outputs[f"{prefix}PrivateIp"]["Value"]["Fn::GetAtt"]
        assert attribute == "PrivateIp"
        assert by_logical_id[instance_id]["PrivateIpAddress"] == STUDY_NODES[node]
        eip = by_logical_id[outputs[f"{prefix}PublicIp"]["Value"]["Ref"]]
        assert eip["InstanceId"] == {"Ref": instance_id}


def test_server_user_data_installs_k3s_with_the_study_flags(template: dict[str, Any]) -> None:
    script = user_data(node_instances(template)["k3s-s"])
    assert "INSTALL_K3S_VERSION='${K3sVersion}'" in script
    assert (
        "server --disable traefik --cluster-cidr 172.16.0.0/16 --service-cidr 10.10.200.0/24"
        " --write-kubeconfig-mode 644 --node-ip 192.168.10.10"
    ) in script


@pytest.mark.parametrize("agent", ["k3s-w1", "k3s-w2"])
def test_agents_wait_for_the_server_then_join_it(template: dict[str, Any], agent: str) -> None:
    script = user_data(node_instances(template)[agent])
    wait = script.index("until curl -sk --max-time 5 -o /dev/null https://192.168.10.10:6443/ping")
    join = script.index("K3S_URL='https://192.168.10.10:6443'")
    assert wait < join
    assert '"$SECONDS" -ge "$deadline"' in script
    assert f"agent --node-ip {STUDY_NODES[agent]}" in script


def test_testpc_stays_outside_the_cluster(template: dict[str, Any]) -> None:
    script = user_data(node_instances(template)["testpc"])
    assert "k3s" not in script.replace("k3s-s", "").replace("k3s-w", "")


@pytest.mark.parametrize("node", sorted(STUDY_NODES))
def test_user_data_is_strict_bash_that_names_the_host(template: dict[str, Any], node: str) -> None:
    script = user_data(node_instances(template)[node])
    assert script.startswith("#!/bin/bash\nset -euo pipefail\n")
    # Tracing would copy the join token into /var/log/cloud-init-output.log.
    assert not re.search(r"set -[a-z]*x|xtrace|bash -[a-z]*x", script)
    assert f"hostnamectl set-hostname {node}\n" in script
    rendered = script.replace("${K3sVersion}", "v1.30.5+k3s1").replace("${K3sToken}", "t" * 64)
    assert "${" not in rendered.replace("$((", "")
    checked = subprocess.run(["bash", "-n"], input=rendered, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


# --- deployed on moto -------------------------------------------------------------------------


@pytest.fixture
def lab_stack(moto_aws: str) -> Iterator[dict[str, Any]]:
    """The template deployed as stack `lab-moto`; whatever is left is deleted afterwards."""
    cfn, ec2 = aws_client(moto_aws, "cloudformation"), aws_client(moto_aws, "ec2")
    ec2.create_key_pair(KeyName="lab-moto")
    parameters = {
        "LabName": "moto",
        "K3sToken": secrets.token_hex(32),
        "SshCidr": "203.0.113.7/32",
        "KeyName": "lab-moto",
        "DeadlineRoleName": "lab-moto-ttl-ap-northeast-2",
    }
    stack_id = cfn.create_stack(
        StackName="lab-moto",
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Tags=[{"Key": "lab:name", "Value": "moto"}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )["StackId"]
    yield {"cfn": cfn, "ec2": ec2, "id": stack_id, "name": "lab-moto"}
    if cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] != "DELETE_COMPLETE":
        remove_route_tables(ec2, stack_outputs(cfn, stack_id)["VpcId"])
        cfn.delete_stack(StackName=stack_id)


def test_stack_creates_four_running_nodes_at_the_study_addresses(lab_stack: dict[str, Any]) -> None:
    stack = lab_stack["cfn"].describe_stacks(StackName=lab_stack["id"])["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    nodes = instances_by_name(lab_stack["ec2"], lab_stack["name"])
    assert {name: node["PrivateIpAddress"] for name, node in nodes.items()} == STUDY_NODES
    assert {node["State"]["Name"] for node in nodes.values()} == {"running"}
    for node in nodes.values():
        assert {"Key": "lab:name", "Value": "moto"} in node["Tags"]


def test_outputs_give_each_node_its_public_and_private_address(lab_stack: dict[str, Any]) -> None:
    outputs = stack_outputs(lab_stack["cfn"], lab_stack["id"])
    nodes = instances_by_name(lab_stack["ec2"], lab_stack["name"])
    for name, prefix in NODE_OUTPUT_PREFIX.items():
        public = outputs[f"{prefix}PublicIp"]
        assert ipaddress.ip_address(public) in ipaddress.ip_network("127.0.0.0/8")
        assert public == nodes[name]["PublicIpAddress"]
        assert outputs[f"{prefix}PrivateIp"] == STUDY_NODES[name]
    assert outputs["VpcId"] == nodes["k3s-s"]["VpcId"]


def test_security_group_admits_only_the_user_cidr_from_outside(lab_stack: dict[str, Any]) -> None:
    vpc_id = stack_outputs(lab_stack["cfn"], lab_stack["id"])["VpcId"]
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    groups = lab_stack["ec2"].describe_security_groups(Filters=in_vpc)["SecurityGroups"]
    sources = {
        (rule["IpProtocol"], rule.get("FromPort"), source["CidrIp"])
        for group in groups
        for rule in group["IpPermissions"]
        for source in rule["IpRanges"]
    }
    assert sources == {
        ("tcp", 22, "203.0.113.7/32"),
        ("tcp", 30000, "203.0.113.7/32"),
        ("-1", None, "192.168.0.0/16"),
        ("-1", None, "172.16.0.0/16"),
    }


def test_stack_deletes_and_terminates_the_nodes(lab_stack: dict[str, Any]) -> None:
    cfn, ec2 = lab_stack["cfn"], lab_stack["ec2"]
    remove_route_tables(ec2, stack_outputs(cfn, lab_stack["id"])["VpcId"])
    cfn.delete_stack(StackName=lab_stack["id"])
    status = cfn.describe_stacks(StackName=lab_stack["id"])["Stacks"][0]["StackStatus"]
    assert status == "DELETE_COMPLETE"
    nodes = instances_by_name(ec2, lab_stack["name"])
    assert sorted(nodes) == sorted(STUDY_NODES)
    assert {node["State"]["Name"] for node in nodes.values()} == {"terminated"}
