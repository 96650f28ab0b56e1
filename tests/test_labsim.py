"""Tests of the lab simulator itself (tests/labsim), without the CLI.

They drive the simulator the way the CLI will: boto3 against its moto endpoint, the real OpenSSH
client against its sshd's, and the simulated tools with the environment sshd gives them.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import yaml

from tests.labsim import LabSim
from tests.labsim.config import EGRESS_FILE, TOOLS_DIR
from tests.labsim.egress import PLACEHOLDERS, fill

ROOT = Path(__file__).resolve().parents[1]
NODES = ("k3s-s", "k3s-w1", "k3s-w2", "testpc")
V = "1.23.2"
ISTIOCTL = f"istio-{V}/bin/istioctl"
RELEASE = f"https://github.com/istio/istio/releases/download/{V}/istio-{V}-linux-amd64.tar.gz"
AMI_PARAMETER = "/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id"
# shorter than the simulator's defaults: these tests check behaviour, not waiting
FAST = {
    "boot_delay": 0.1,
    "cloud_init_delay": 0.2,
    "node_ready_delay": 0.1,
    "istio_ready_delay": 0.2,
    "pod_ready_delay": 0.1,
}


# -- helpers -----------------------------------------------------------------------------------
def aws(sim: LabSim, service: str):
    return boto3.client(
        service,
        endpoint_url=sim.env["AWS_ENDPOINT_URL"],
        region_name=sim.env["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def launch(sim: LabSim, tmp_path: Path, nodes: tuple[str, ...] = NODES) -> Path:
    """What the lab's stack does: a key pair, one instance per node, each with an Elastic IP.
    Returns the private key file, as the CLI would save it."""
    ec2 = aws(sim, "ec2")
    key = ec2.create_key_pair(KeyName="lab-test", KeyType="ed25519")
    key_file = tmp_path / "lab-test.pem"
    key_file.write_text(key["KeyMaterial"])
    key_file.chmod(0o600)
    ami = aws(sim, "ssm").get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
    for node in nodes:
        instance = ec2.run_instances(
            ImageId=ami,
            MinCount=1,
            MaxCount=1,
            KeyName="lab-test",
            InstanceType="t3.medium",
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": node}]}],
        )["Instances"][0]
        address = ec2.allocate_address(Domain="vpc")
        ec2.associate_address(InstanceId=instance["InstanceId"], AllocationId=address["AllocationId"])
    return key_file


def ssh(
    sim: LabSim,
    node: str,
    key_file: Path,
    command: str,
    stdin: str | None = None,
    known_hosts: Path | None = None,
    strict: str = "no",
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ssh_argv(sim, node, key_file, command, known_hosts, strict),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ssh_argv(
    sim: LabSim, node: str, key_file: Path, command: str, known_hosts: Path | None = None, strict: str = "no"
) -> list[str]:
    """A plain OpenSSH client's command line to the node's sshd, as a person would type it."""
    address = sim.wait_for_sshd(node)
    options = {
        "BatchMode": "yes",
        "IdentitiesOnly": "yes",
        "StrictHostKeyChecking": strict,
        "UserKnownHostsFile": str(known_hosts or os.devnull),
        "ConnectTimeout": "5",
        "LogLevel": "ERROR",
    }
    flags = [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]
    return [
        "ssh",
        "-i",
        str(key_file),
        "-p",
        sim.env["LAB_SSH_PORT"],
        *flags,
        f"{sim.env['LAB_SSH_USER']}@{address}",
        command,
    ]


def wait_booted(sim: LabSim, nodes: tuple[str, ...] = NODES) -> None:
    for node in nodes:
        sim.wait_for_sshd(node)


def tool(
    sim: LabSim, node: str, *argv: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a simulated tool with the environment its node's sshd gives (faster than SSH)."""
    node_env = {
        "PATH": f"{TOOLS_DIR}:/usr/bin:/bin",
        "HOME": str(sim.layout.node_home(node)),
        "LABSIM_NODE": node,
        "LABSIM_DIR": str(sim.layout.root),
        "LABSIM_PYTHON": sys.executable,
        **(env or {}),
    }
    program = str(TOOLS_DIR / "istio" / "istioctl") if argv[0] == "istioctl" else argv[0]
    return subprocess.run(
        [program, *argv[1:]], input=stdin, capture_output=True, text=True, env=node_env, cwd="/", timeout=60
    )


def istioctl(sim: LabSim, *argv: str) -> subprocess.CompletedProcess:
    return tool(sim, "k3s-s", "istioctl", *argv, env={"LABSIM_ISTIO_VERSION": V})


def kubectl(sim: LabSim, *argv: str, stdin: str = "") -> subprocess.CompletedProcess:
    return tool(sim, "k3s-s", "kubectl", *argv, stdin=stdin)


def poll(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
    return value


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


def port_open(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


NETSHOOT = """
apiVersion: v1
kind: Pod
metadata: {name: pod1, namespace: default, labels: {app: netshoot}}
spec:
  containers: [{name: netshoot, image: nicolaka/netshoot:v0.13, command: [sleep, infinity]}]
"""
# The 2023 wildcard SNI design, cut to what the simulator's `gateway` rule looks for: each of these
# objects is required for *.wikipedia.org to go through the SNI gateway.
SNI_ROUTING = {
    "ServiceEntry": """
apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata: {name: wikipedia, namespace: istio-egress}
spec:
  hosts: ["*.wikipedia.org"]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: NONE
""",
    "DestinationRule": """
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: sni-gateway, namespace: istio-egress}
spec:
  host: istio-egressgateway-sni.istio-egress.svc.cluster.local
  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
  subsets: [{name: wildcard}]
""",
    "VirtualService": """
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: wikipedia, namespace: istio-egress}
spec:
  hosts: ["*.wikipedia.org"]
  gateways: [mesh]
  tls:
    - match: [{gateways: [mesh], port: 443, sniHosts: ["*.wikipedia.org"]}]
      route:
        - destination:
            host: istio-egressgateway-sni.istio-egress.svc.cluster.local
            subset: wildcard
            port: {number: 443}
""",
    "EnvoyFilter": """
apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: sni-magic, namespace: istio-system}
spec:
  workloadSelector: {labels: {istio: egressgateway-sni}}
  configPatches:
    - applyTo: NETWORK_FILTER
      match: {context: GATEWAY, listener: {portNumber: 8443}}
      patch: {operation: MERGE, value: {name: envoy.filters.network.tcp_proxy, typed_config: {cluster: sni_cluster}}}
""",
}
SNI_DEPLOYMENT = """
apiVersion: v1
kind: Namespace
metadata: {name: istio-egress}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: istio-egressgateway-sni, namespace: istio-egress}
spec:
  selector: {matchLabels: {istio: egressgateway-sni}}
  template:
    metadata:
      annotations: {inject.istio.io/templates: gateway}
      labels: {istio: egressgateway-sni, sidecar.istio.io/inject: "true"}
    spec:
      containers: [{name: istio-proxy, image: auto}]
"""
SNI_GATEWAY = "---".join([SNI_DEPLOYMENT, *SNI_ROUTING.values()])


@pytest.fixture
def booted(tmp_path: Path):
    """A simulator whose four nodes have booted, and the lab's private key."""
    with LabSim(workdir=tmp_path / "sim", **FAST) as sim:
        key_file = launch(sim, tmp_path)
        wait_booted(sim)
        yield sim, key_file


def mesh_ready(sim: LabSim, egress_gateway: bool = True) -> None:
    """Istio installed (demo), injection on in default, pod1 Ready, maybe the SNI gateway."""
    poll(lambda: tool(sim, "k3s-s", "cloud-init", "status", "--wait").returncode == 0)
    assert istioctl(sim, "install", "--set", "profile=demo", "-y").returncode == 0
    kubectl(sim, "label", "namespace", "default", "istio-injection=enabled")
    manifests = NETSHOOT + ("---" + SNI_GATEWAY if egress_gateway else "")
    applied = kubectl(sim, "apply", "-f", "-", stdin=manifests)
    assert applied.returncode == 0, applied.stderr
    waited = kubectl(sim, "wait", "--for=condition=Ready", "pod", "-l", "app=netshoot", "--timeout=20s")
    assert waited.returncode == 0, waited.stderr


# -- AWS and the environment -------------------------------------------------------------------
def test_exports_reach_moto_with_the_ubuntu_ami_parameter(tmp_path: Path) -> None:
    with LabSim(workdir=tmp_path, ssh_timeout=30, ready_timeout=20, **FAST) as sim:
        assert sim.env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert sim.env["LAB_SSH_CIDR"] == "127.0.0.1/32"
        assert sim.env["LAB_HOME"] == str(tmp_path / "labhome")
        assert sim.env["LABSIM_LOG"] == str(tmp_path / "commands.jsonl")
        assert (sim.env["LAB_SSH_TIMEOUT"], sim.env["LAB_READY_TIMEOUT"]) == ("30", "20")
        ami = aws(sim, "ssm").get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
        images = aws(sim, "ec2").describe_images(ImageIds=[ami])["Images"]
        assert [i["ImageId"] for i in images] == [ami]
        exported = subprocess.run(
            ["bash", "-c", f'eval "{sim.exports()}"; echo $LAB_SSH_PORT'],
            capture_output=True,
            text=True,
            check=True,
        )
        assert exported.stdout.strip() == sim.env["LAB_SSH_PORT"]


def test_cloudformation_stack_boots_a_node_and_deleting_it_stops_sshd(tmp_path: Path) -> None:
    template = {
        "Parameters": {
            "Ami": {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>", "Default": AMI_PARAMETER}
        },
        "Resources": {
            "Server": {
                "Type": "AWS::EC2::Instance",
                "Properties": {
                    "ImageId": {"Ref": "Ami"},
                    "InstanceType": "t3.medium",
                    "KeyName": "lab-x",
                    "UserData": {
                        "Fn::Base64": "curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.4+k3s1 sh -\n"
                    },
                    "Tags": [{"Key": "Name", "Value": "k3s-s"}],
                },
            },
            "ServerIp": {
                "Type": "AWS::EC2::EIP",
                "Properties": {"Domain": "vpc", "InstanceId": {"Ref": "Server"}},
            },
        },
    }
    with LabSim(workdir=tmp_path, **FAST) as sim:
        aws(sim, "ec2").create_key_pair(KeyName="lab-x", KeyType="ed25519")
        cloudformation = aws(sim, "cloudformation")
        cloudformation.create_stack(StackName="lab-egress", TemplateBody=json.dumps(template))
        address = sim.wait_for_sshd("k3s-s")
        assert port_open(address, int(sim.env["LAB_SSH_PORT"]))
        info = json.loads(sim.layout.instance_file("k3s-s").read_text())
        assert info["k3s_version"] == "v1.30.4+k3s1"  # read from the instance's user data
        cloudformation.delete_stack(StackName="lab-egress")
        poll(lambda: sim.address("k3s-s") is None)
        assert not port_open(address, int(sim.env["LAB_SSH_PORT"]))


# -- SSH ---------------------------------------------------------------------------------------
def test_sshd_answers_on_the_instance_address_with_the_node_environment(booted, tmp_path):
    sim, key_file = booted
    for node in NODES:
        result = ssh(sim, node, key_file, "echo $LABSIM_NODE $HOME; command -v kubectl")
        assert result.returncode == 0, result.stderr
        name, home, kubectl_path = result.stdout.split()
        assert (name, home) == (node, str(sim.layout.node_home(node)))
        assert kubectl_path == str(TOOLS_DIR / "kubectl")
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    refused = ssh(sim, "k3s-s", stranger, "true")
    assert refused.returncode == 255 and "Permission denied" in refused.stderr


def test_commands_over_ssh_are_logged_with_node_argv_stdin_and_exit(booted):
    sim, key_file = booted
    assert ssh(sim, "k3s-s", key_file, "cloud-init status --wait").returncode == 0
    applied = ssh(
        sim, "k3s-s", key_file, "KUBECONFIG=/etc/rancher/k3s/k3s.yaml kubectl apply -f -", stdin=NETSHOOT
    )
    assert applied.stdout == "pod/pod1 created\n"
    on_agent = ssh(sim, "k3s-w1", key_file, "kubectl get nodes -o json")
    # no kubeconfig on an agent: k3s's kubectl falls back to localhost:8080 (see labsim/kubectl.py)
    assert on_agent.returncode == 1 and "localhost:8080 was refused" in on_agent.stderr
    entries = sim.commands(tool="kubectl")
    assert [(e["node"], e["argv"], e["exit"]) for e in entries] == [
        ("k3s-s", ["kubectl", "apply", "-f", "-"], 0),
        ("k3s-w1", ["kubectl", "get", "nodes", "-o", "json"], 1),
    ]
    assert entries[0]["stdin"] == NETSHOOT
    assert entries[0]["env"] == {"KUBECONFIG": "/etc/rancher/k3s/k3s.yaml"}
    assert entries[1]["stdin"] is None
    assert all(e["ts"] <= e["ended"] for e in entries)
    assert entries[0]["ended"] <= entries[1]["ts"], "the second ssh ran after the first returned"


def test_rotated_host_key_is_refused_by_a_pinned_client(booted, tmp_path):
    sim, key_file = booted
    known_hosts = tmp_path / "known_hosts"
    first = ssh(sim, "k3s-w2", key_file, "true", known_hosts=known_hosts, strict="accept-new")
    assert first.returncode == 0 and known_hosts.read_text().strip()
    assert ssh(sim, "k3s-w2", key_file, "true", known_hosts=known_hosts, strict="yes").returncode == 0
    sim.rotate_host_key("k3s-w2")
    changed = ssh(sim, "k3s-w2", key_file, "true", known_hosts=known_hosts, strict="yes")
    assert changed.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in changed.stderr


def test_terminated_instance_loses_its_sshd(booted):
    sim, _ = booted
    ec2 = aws(sim, "ec2")
    address = sim.address("k3s-w1")
    instances = [
        i
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if {"Key": "Name", "Value": "k3s-w1"} in i["Tags"]
    ]
    ec2.terminate_instances(InstanceIds=[instances[0]["InstanceId"]])
    poll(lambda: sim.address("k3s-w1") is None)
    assert not port_open(address, int(sim.env["LAB_SSH_PORT"]))
    assert not sim.layout.instance_file("k3s-w1").exists()
    assert sim.address("k3s-w2") is not None


# -- faults ------------------------------------------------------------------------------------
def test_fault_sshd_late_keeps_one_node_unreachable_for_a_while(tmp_path):
    # two nodes and a window far longer than k3s-s takes to come up: k3s-w1 is still dark then
    with LabSim(workdir=tmp_path / "sim", sshd_late="k3s-w1:10", **FAST) as sim:
        launch(sim, tmp_path, nodes=("k3s-s", "k3s-w1"))
        sim.wait_for_sshd("k3s-s")
        assert sim.address("k3s-w1") is None
        address = sim.wait_for_sshd("k3s-w1", timeout=30)
        assert port_open(address, int(sim.env["LAB_SSH_PORT"]))


def test_fault_sshd_restart_drops_the_session_once(tmp_path):
    with LabSim(workdir=tmp_path / "sim", sshd_restart_on="istioctl install", **FAST) as sim:
        key_file = launch(sim, tmp_path, nodes=("k3s-s",))
        home = sim.layout.node_home("k3s-s")
        istio = home / f"istio-{V}/bin"
        istio.mkdir(parents=True)
        (istio / "istioctl").write_text(
            f'#!/bin/sh\nLABSIM_ISTIO_VERSION={V} exec "{TOOLS_DIR}/istio/istioctl" "$@"\n'
        )
        (istio / "istioctl").chmod(0o755)
        ssh(sim, "k3s-s", key_file, "cloud-init status --wait")
        install = f"$HOME/{ISTIOCTL} install --set profile=demo -y"
        dropped = ssh(sim, "k3s-s", key_file, install)
        assert dropped.returncode == 255  # the connection went away mid-command
        again = ssh(sim, "k3s-s", key_file, install)
        assert again.returncode == 0, again.stderr
        assert [e["exit"] for e in sim.commands(tool="istioctl")] == [255, 0]


def test_fault_cloud_init_fail_on_one_node(tmp_path):
    with LabSim(workdir=tmp_path / "sim", cloud_init_fail="k3s-w2", **FAST) as sim:
        launch(sim, tmp_path)
        wait_booted(sim)
        failed = tool(sim, "k3s-w2", "cloud-init", "status", "--wait")
        assert (failed.returncode, failed.stdout.splitlines()[-1]) == (1, "status: error")
        tail = tool(sim, "k3s-w2", "sudo", "tail", "-n", "50", "/var/log/cloud-init-output.log")
        assert "[ERROR]  Download failed" in tail.stdout
        fine = tool(sim, "k3s-w1", "cloud-init", "status", "--wait")
        assert (fine.returncode, fine.stdout.splitlines()[-1]) == (0, "status: done")
        assert "-- No entries --" in tool(sim, "k3s-w2", "journalctl", "-u", "k3s-agent").stdout

        def ready_nodes() -> list[str]:
            nodes = json.loads(kubectl(sim, "get", "nodes", "-o", "json").stdout)["items"]
            return sorted(
                n["metadata"]["name"] for n in nodes if n["status"]["conditions"][-1]["status"] == "True"
            )

        assert poll(lambda: ready_nodes() == ["k3s-s", "k3s-w1"] and ready_nodes())


def test_nodes_become_ready_after_cloud_init_and_testpc_is_not_one(booted):
    sim, _ = booted
    assert tool(sim, "k3s-s", "cloud-init", "status", "--wait").stdout.endswith("status: done\n")

    def names(ready_only: bool) -> list[str]:
        items = json.loads(kubectl(sim, "get", "nodes", "-o", "json").stdout)["items"]
        return [
            n["metadata"]["name"]
            for n in items
            if not ready_only or n["status"]["conditions"][-1]["status"] == "True"
        ]

    assert poll(lambda: names(ready_only=True) == ["k3s-s", "k3s-w1", "k3s-w2"])


def test_fault_kubectl_transient_refuses_the_first_calls(tmp_path):
    with LabSim(workdir=tmp_path / "sim", kubectl_transient=2, **FAST) as sim:
        launch(sim, tmp_path, nodes=("k3s-s",))
        wait_booted(sim, ("k3s-s",))
        tool(sim, "k3s-s", "cloud-init", "status", "--wait")
        calls = [kubectl(sim, "get", "nodes", "-o", "json") for _ in range(3)]
        assert [c.returncode for c in calls] == [1, 1, 0]
        assert calls[0].stderr.strip() == (
            "The connection to the server 127.0.0.1:6443 was refused - did you specify the "
            "right host or port?"
        )
        assert json.loads(calls[2].stdout)["kind"] == "List"


def test_fault_istiod_never_ready(tmp_path):
    with LabSim(workdir=tmp_path / "sim", istiod_never_ready=True, **FAST) as sim:
        launch(sim, tmp_path, nodes=("k3s-s",))
        wait_booted(sim, ("k3s-s",))
        tool(sim, "k3s-s", "cloud-init", "status", "--wait")
        install = istioctl(sim, "install", "--set", "profile=demo", "-y", "--readiness-timeout", "500ms")
        assert install.returncode == 1 and "Istiod encountered an error" in install.stdout
        waited = kubectl(
            sim,
            "wait",
            "--for=condition=Available",
            "deployment/istiod",
            "-n",
            "istio-system",
            "--timeout=500ms",
        )
        assert waited.returncode == 1
        assert waited.stderr.strip() == ("error: timed out waiting for the condition on deployments/istiod")
        logs = kubectl(sim, "logs", "-n", "istio-system", "deployment/istiod", "--tail=200")
        assert "\terror\t" in logs.stdout


# -- Istio, addons, workloads ------------------------------------------------------------------
def test_istio_release_install_addons_and_netshoot(booted):
    sim, key_file = booted
    run = lambda command, stdin=None: ssh(sim, "k3s-s", key_file, command, stdin)  # noqa: E731
    assert run("cloud-init status --wait").returncode == 0
    assert run(f"test -x $HOME/{ISTIOCTL}").returncode == 1
    fetched = run(  # the CLI downloads to /tmp; here the node's home, to leave nothing behind
        f"curl -fsSL --retry 5 -o $HOME/istio-{V}.tar.gz {RELEASE} && "
        f"tar -xzf $HOME/istio-{V}.tar.gz -C $HOME"
    )
    assert fetched.returncode == 0, fetched.stderr
    version = run(f"test -x $HOME/{ISTIOCTL} && $HOME/{ISTIOCTL} version --remote=false -o json")
    assert json.loads(version.stdout)["clientVersion"]["version"] == V
    assert run(f"$HOME/{ISTIOCTL} install --set profile=demo -y").returncode == 0
    waited = run(
        "kubectl wait --for=condition=Available deployment/istiod "
        "deployment/istio-ingressgateway deployment/istio-egressgateway "
        "-n istio-system --timeout=20s"
    )
    assert waited.returncode == 0, waited.stderr
    egress = sim.objects("Service", "istio-system")
    ports = {
        s["metadata"]["name"]: {(p["name"], p["port"], p["targetPort"]) for p in s["spec"]["ports"]}
        for s in egress
    }
    assert ports["istio-egressgateway"] == {("http2", 80, 8080), ("https", 443, 8443)}
    mesh = yaml.safe_load(sim.objects("ConfigMap", "istio-system")[0]["data"]["mesh"])
    assert mesh["accessLogFile"] == "/dev/stdout"
    addons = run(f"kubectl apply -f $HOME/istio-{V}/samples/addons")
    assert "deployment.apps/kiali created" in addons.stdout
    assert (
        run(
            "kubectl wait --for=condition=Available deployment/kiali -n istio-system --timeout=20s"
        ).returncode
        == 0
    )
    patch = """kubectl patch service kiali -n istio-system -p '{"spec":{"type":"NodePort"}}'"""
    patched = json.loads(run(patch + " -o json").stdout)
    kiali = json.loads(run("kubectl get service kiali -n istio-system -o json").stdout)
    assert kiali["spec"] == patched["spec"] and kiali["spec"]["type"] == "NodePort"
    assert 30000 <= kiali["spec"]["ports"][0]["nodePort"] <= 32767
    assert (
        run("kubectl label namespace default istio-injection=enabled --overwrite").stdout
        == "namespace/default labeled\n"
    )
    assert run("kubectl apply -f -", NETSHOOT).stdout == "pod/pod1 created\n"
    # The webhook added istio-proxy, so the live container list is longer than the file's: kubectl's
    # patch carries `$setElementOrder/containers` (apimachinery v0.30.5 strategicpatch `diffLists`),
    # is not `{}`, and kubectl says "configured" though nothing changes.
    assert run("kubectl apply -f -", NETSHOOT).stdout == "pod/pod1 configured\n"
    assert (
        run("kubectl wait --for=condition=Ready pod -l app=netshoot -n default --timeout=20s").stdout
        == "pod/pod1 condition met\n"
    )
    pods = json.loads(run("kubectl get pods -n default -l app=netshoot -o json").stdout)
    assert [c["name"] for c in pods["items"][0]["spec"]["containers"]] == ["netshoot", "istio-proxy"]


def test_curl_on_a_node_resolves_only_the_istio_release(booted):
    sim, _ = booted
    missing = tool(sim, "k3s-s", "curl", "-sS", "https://example.com/")
    assert (missing.returncode, missing.stderr) == (6, "curl: (6) Could not resolve host: example.com\n")
    assert tool(sim, "k3s-s", "curl", "-fsSL", "-o", "/dev/null", RELEASE.replace(V, "9.x")).returncode == 22


def test_kubectl_apply_get_delete_and_errors(booted):
    sim, _ = booted
    tool(sim, "k3s-s", "cloud-init", "status", "--wait")
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: lab}\ndata: {a: '1'}\n"
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: lab}\n"
    missing_namespace = kubectl(sim, "apply", "-f", "-", stdin=config)
    assert missing_namespace.returncode == 1 and 'namespaces "lab" not found' in (missing_namespace.stderr)
    assert kubectl(sim, "apply", "-f", "-", stdin=namespace + "---\n" + config).stdout == (
        "namespace/lab created\nconfigmap/c created\n"
    )
    assert kubectl(sim, "apply", "-f", "-", stdin=config.replace("'1'", "'2'")).stdout == (
        "configmap/c configured\n"
    )
    got = json.loads(kubectl(sim, "get", "configmap", "c", "-n", "lab", "-o", "json").stdout)
    assert got["data"] == {"a": "2"}
    envoy_filter = (
        "apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\n"
        "metadata: {name: f, namespace: lab}\nspec: {}\n"
    )
    no_crd = kubectl(sim, "apply", "-f", "-", stdin=envoy_filter)
    assert no_crd.returncode == 1 and 'no matches for kind "EnvoyFilter"' in no_crd.stderr
    assert kubectl(sim, "get", "envoyfilters", "-A").returncode == 1
    assert (
        kubectl(sim, "delete", "-f", "-", "--ignore-not-found", "--wait=true", stdin=config).stdout
        == 'configmap "c" deleted\n'
    )
    assert kubectl(sim, "delete", "-f", "-", "--ignore-not-found", stdin=config).returncode == 0
    assert kubectl(sim, "delete", "-f", "-", stdin=config).returncode == 1
    none = kubectl(sim, "wait", "--for=condition=Ready", "pod", "-l", "app=nothing", "--timeout=1s")
    assert (none.returncode, none.stderr) == (1, "error: no matching resources found\n")
    assert kubectl(sim, "get", "pods", "--bogus").stderr == "error: unknown flag: --bogus\n"


def test_deployment_pods_injection_logs_and_exec(booted):
    sim, _ = booted
    mesh_ready(sim)
    gateway = json.loads(kubectl(sim, "get", "pods", "-n", "istio-egress", "-o", "json").stdout)
    proxy = gateway["items"][0]["spec"]["containers"][0]
    assert (proxy["name"], proxy["image"]) == ("istio-proxy", f"docker.io/istio/proxyv2:{V}")
    missing = kubectl(sim, "exec", "-n", "default", "pod9", "--", "true")
    assert missing.stderr == 'Error from server (NotFound): pods "pod9" not found\n'
    # kubectl 1.30 (kubernetes/kubectl v0.30.5 pkg/cmd/exec/exec.go) still runs a command given
    # without `--`, after a deprecation note; 1.31 refuses it
    old_style = kubectl(sim, "exec", "pod1", "-c", "netshoot", "nope")
    assert old_style.returncode == 126 and "is DEPRECATED" in old_style.stderr
    rollout = kubectl(
        sim, "rollout", "status", "deployment/istio-egressgateway-sni", "-n", "istio-egress", "--timeout=10s"
    )
    assert rollout.stdout.endswith('deployment "istio-egressgateway-sni" successfully rolled out\n')
    clusters = json.loads(istioctl(sim, "proxy-config", "clusters", "pod1.default", "-o", "json").stdout)
    assert "PassthroughCluster" in [c["name"] for c in clusters]
    assert json.loads(istioctl(sim, "analyze", "-A", "-o", "json").stdout) == []
    unknown = kubectl(sim, "exec", "pod1", "-c", "netshoot", "--", "nope")
    assert unknown.returncode == 126
    assert unknown.stderr.endswith("command terminated with exit code 126\n")


# -- egress ------------------------------------------------------------------------------------
SIDECAR_TO_SNI_GATEWAY = "outbound|443|wildcard|istio-egressgateway-sni.istio-egress.svc.cluster.local"


def exec_curl(sim: LabSim, url: str, *flags: str) -> subprocess.CompletedProcess:
    return kubectl(sim, "exec", "-n", "default", "pod1", "-c", "netshoot", "--", "curl", *flags, url)


def pod_log(sim: LabSim, namespace: str, selector: str, since: str = "") -> str:
    extra = [f"--since-time={since}"] if since else []
    return kubectl(
        sim, "logs", "-n", namespace, "-l", selector, "-c", "istio-proxy", "--tail=-1", *extra
    ).stdout


def test_egress_gateway_mode_leaves_the_gateway_path_in_the_logs(booted):
    sim, _ = booted
    mesh_ready(sim)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    english = exec_curl(sim, "https://en.wikipedia.org/wiki/Main_Page", "-sS")
    assert english.returncode == 0
    assert "<title>Wikipedia, the free encyclopedia</title>" in english.stdout
    german = exec_curl(sim, "https://de.wikipedia.org/wiki/Wikipedia:Hauptseite", "-sS")
    assert "<title>Wikipedia – Die freie Enzyklopädie</title>" in german.stdout
    gateway = pod_log(sim, "istio-egress", "istio=egressgateway-sni", since)
    assert "sni_cluster" in gateway and " en.wikipedia.org -" in gateway
    assert "dynamic_forward_proxy_cluster" in gateway and " de.wikipedia.org -" in gateway
    assert "outbound_.443_.wildcard_.istio-egressgateway-sni.istio-egress.svc.cluster.local" in gateway
    sidecar = pod_log(sim, "default", "app=netshoot", since)
    assert SIDECAR_TO_SNI_GATEWAY in sidecar
    assert "PassthroughCluster" not in sidecar
    other = exec_curl(sim, "https://www.google.com/", "-s", "-o", "/dev/null", "-w", "%{http_code}")
    assert other.stdout == "200"
    assert "www.google.com" not in pod_log(sim, "istio-egress", "istio=egressgateway-sni")
    assert "PassthroughCluster" in pod_log(sim, "default", "app=netshoot")
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    assert pod_log(sim, "default", "app=netshoot", future) == ""


def test_egress_gateway_mode_needs_every_object_of_the_sni_design(booted):
    """Take one object away (the VirtualService, the ServiceEntry, ...): the request leaves
    through PassthroughCluster and the gateway sees nothing; put it back: through the gateway."""
    sim, _ = booted
    mesh_ready(sim)
    url = "https://en.wikipedia.org/wiki/Main_Page"

    def latest_sidecar_line() -> str:
        return pod_log(sim, "default", "app=netshoot").splitlines()[-1]

    for kind, manifest in SNI_ROUTING.items():
        removed = kubectl(sim, "delete", "-f", "-", stdin=manifest)
        assert removed.returncode == 0, removed.stderr
        gateway_before = pod_log(sim, "istio-egress", "istio=egressgateway-sni")
        assert exec_curl(sim, url).returncode == 0
        assert pod_log(sim, "istio-egress", "istio=egressgateway-sni") == gateway_before, kind
        assert "PassthroughCluster" in latest_sidecar_line(), kind
        assert kubectl(sim, "apply", "-f", "-", stdin=manifest).returncode == 0
        assert exec_curl(sim, url).returncode == 0
        gateway_after = pod_log(sim, "istio-egress", "istio=egressgateway-sni")
        assert gateway_after.count(" en.wikipedia.org -") == gateway_before.count(" en.wikipedia.org -") + 1
        assert SIDECAR_TO_SNI_GATEWAY in latest_sidecar_line(), kind


def test_egress_passthrough_mode_bypasses_the_gateway(tmp_path):
    with LabSim(workdir=tmp_path / "sim", egress="passthrough", **FAST) as sim:
        launch(sim, tmp_path, nodes=("k3s-s",))
        wait_booted(sim, ("k3s-s",))
        mesh_ready(sim)
        result = exec_curl(sim, "https://en.wikipedia.org/wiki/Main_Page", "-sS")
        assert "<title>Wikipedia, the free encyclopedia</title>" in result.stdout
        assert "wikipedia" not in pod_log(sim, "istio-egress", "istio=egressgateway-sni")
        sidecar = pod_log(sim, "default", "app=netshoot")
        assert "PassthroughCluster" in sidecar and " en.wikipedia.org -" in sidecar


def test_egress_blocked_mode_fails_the_tls_handshake(tmp_path):
    with LabSim(workdir=tmp_path / "sim", egress="blocked", **FAST) as sim:
        launch(sim, tmp_path, nodes=("k3s-s",))
        wait_booted(sim, ("k3s-s",))
        mesh_ready(sim, egress_gateway=False)
        result = exec_curl(sim, "https://www.google.com/", "-sS")
        assert result.returncode == 35
        assert result.stderr == (
            "curl: (35) OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to "
            "www.google.com:443 \ncommand terminated with exit code 35\n"
        )
        plain = exec_curl(sim, "http://edition.cnn.com/", "-s", "-o", "/dev/null", "-w", "%{http_code}")
        assert (plain.returncode, plain.stdout) == (0, "502")


def test_egress_yaml_rules_use_only_known_placeholders() -> None:
    catalogue = yaml.safe_load(EGRESS_FILE.read_text())
    assert set(catalogue["modes"]) == {"gateway", "passthrough", "blocked"}
    values = dict.fromkeys(PLACEHOLDERS, "x")
    for mode, rules in catalogue["modes"].items():
        assert rules, mode
        for rule in rules:
            assert {"host"} <= set(rule)
            for text in [rule.get("stderr", "")] + [
                t[f] for t in rule.get("logs", []) for f in ("namespace", "line")
            ]:
                fill(text, values)  # raises on an unknown placeholder
            assert all("kind" in need for need in rule.get("requires", []) + rule.get("unless", []))


# -- the simulator stays dumb ------------------------------------------------------------------
def lab_imports(source: str) -> list[str]:
    """Modules of the code under test (`lab`, `lab.*`) that a Python source imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names = [str(node.args[0].value)]
        else:
            continue
        found += [name for name in names if name == "lab" or name.startswith("lab.")]
    return found


def test_the_simulator_never_imports_the_code_under_test() -> None:
    sample = "import lab\nimport labsim\nfrom lab.scenario import x\nfrom . import lab\n"
    sample += "import importlib\nimportlib.import_module('lab.cli')\n"
    assert lab_imports(sample) == ["lab", "lab.scenario", "lab.cli"], "the scan itself"
    sources = sorted((ROOT / "tests" / "labsim").rglob("*.py"))
    assert len(sources) > 10
    offenders = {str(p.relative_to(ROOT)): found for p in sources if (found := lab_imports(p.read_text()))}
    assert offenders == {}, "the simulator records and answers as configured; it never asks `lab`"


# -- cleanup -----------------------------------------------------------------------------------
def test_leaving_the_context_stops_sshd_sessions_and_moto(tmp_path):
    with LabSim(workdir=tmp_path / "sim", **FAST) as sim:
        key_file = launch(sim, tmp_path, nodes=("k3s-s", "k3s-w1"))
        address = sim.wait_for_sshd("k3s-w1")
        session = subprocess.Popen(
            ssh_argv(sim, "k3s-w1", key_file, "cloud-init status --wait; sleep 59.77"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        poll(lambda: processes_mentioning("sleep 59.77")[1:])  # ssh client and the remote shell
        moto_port = int(sim.env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    assert session.wait(timeout=10) != 0
    assert processes_mentioning(str(tmp_path / "sim")) == []
    assert processes_mentioning("sleep 59.77") == []
    assert not port_open("127.0.0.1", moto_port)
    assert not port_open(address, int(sim.env["LAB_SSH_PORT"]))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_exports_then_ready_and_stops_everything(tmp_path, signum):
    workdir = tmp_path / "sim"
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.labsim", "serve", "--workdir", str(workdir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while (line := server.stdout.readline()) and line != "labsim ready\n":
            lines.append(line)
        assert line == "labsim ready\n", server.stderr.read()
        script = "".join(lines) + 'echo "$AWS_ENDPOINT_URL $LAB_SSH_PORT"\n'
        endpoint, port = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, check=True
        ).stdout.split()
        ec2 = boto3.client(
            "ec2",
            endpoint_url=endpoint,
            region_name="ap-northeast-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        ec2.create_key_pair(KeyName="k")
        ami = boto3.client(
            "ssm",
            endpoint_url=endpoint,
            region_name="ap-northeast-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
        instance = ec2.run_instances(
            ImageId=ami,
            MinCount=1,
            MaxCount=1,
            KeyName="k",
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "k3s-s"}]}],
        )["Instances"][0]
        address = ec2.allocate_address(Domain="vpc")
        ec2.associate_address(InstanceId=instance["InstanceId"], AllocationId=address["AllocationId"])
        poll(lambda: port_open(address["PublicIp"], int(port)))
        server.send_signal(signum)
        assert server.wait(timeout=15) == 0
    finally:
        if server.poll() is None:
            server.kill()
    assert processes_mentioning(str(workdir)) == []
    assert not port_open(address["PublicIp"], int(port))
    assert not port_open("127.0.0.1", int(endpoint.rsplit(":", 1)[1]))
