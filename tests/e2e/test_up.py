"""`invoke up` in full, then status, a second up, and down: asserted from the nodes' command log."""

from __future__ import annotations

import json
import stat
import subprocess
import time

import boto3

from tests.e2e.conftest import cli_for, lab_dir
from tests.labsim.sim import LabSim

NODES = ("k3s-s", "k3s-w1", "k3s-w2", "testpc")
INSTALL_VERBS = ("apply", "label", "patch", "delete", "create")


def _line(entry: dict) -> str:
    return " ".join(entry["argv"])


def _is_install(entry: dict) -> bool:
    words = entry["argv"]
    if entry["tool"] == "curl" or (entry["tool"] == "istioctl" and "install" in words):
        return True
    return entry["tool"] == "kubectl" and len(words) > 1 and words[1] in INSTALL_VERBS


def _installs(entries: list[dict]) -> list[str]:
    return [_line(e) for e in entries if _is_install(e)]


def test_up_status_second_up_down(labsim: LabSim) -> None:
    cli = cli_for(labsim)
    up = cli("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "is ready" in up.stdout
    last = up.stdout.strip().splitlines()[-1]
    assert last.startswith("Lab 'egress' deletes itself at") and "unless you run invoke extend" in last, last
    scheduler = labsim.moto.client("scheduler")
    created = scheduler.get_schedule(Name="lab-egress")["ScheduleExpression"]

    log = labsim.commands()
    server = [e for e in log if e["node"] == "k3s-s"]
    lines = [_line(e) for e in server]
    curl = next(line for line in lines if line.startswith("curl"))
    assert "/1.23.2/istio-1.23.2-linux-amd64.tar.gz" in curl
    assert any(
        line.endswith("istio-1.23.2-linux-amd64.tar.gz.sha256") for line in lines if line.startswith("curl")
    )
    install = next(e for e in server if e["tool"] == "istioctl" and "install" in e["argv"])
    assert install["argv"][1:] == ["install", "--set", "profile=demo", "-y", "--readiness-timeout=300s"]
    addons = next(line for line in lines if line.startswith("kubectl apply") and "samples/addons" in line)
    assert [w.rsplit("/", 1)[-1] for w in addons.split() if "samples/addons" in w] == [
        "kiali.yaml",
        "prometheus.yaml",
        "grafana.yaml",
        "jaeger.yaml",
    ], "the four add-ons the lab promises, by file: never the folder (it holds loki.yaml too)"
    label = lines.index("kubectl label namespace default istio-injection=enabled --overwrite")
    netshoot = next(
        i for i, e in enumerate(server) if _line(e) == "kubectl apply -f -" and "pod1" in (e["stdin"] or "")
    )
    assert label < netshoot, "the namespace is labelled before the pods exist, so they get sidecars"
    assert "image: nicolaka/netshoot:v0.13" in server[netshoot]["stdin"]
    # Every node waited on cloud-init; kubectl ran only on the server.
    assert {e["node"] for e in log if e["tool"] == "cloud-init"} == {"k3s-s", "k3s-w1", "k3s-w2", "testpc"}
    assert {e["node"] for e in log if e["tool"] == "kubectl"} == {"k3s-s"}
    # The nodes' kubeconfig is k3s's: every kubectl and istioctl call must name it.
    configs = {
        e["env"].get("KUBECONFIG")
        for e in log
        if e["tool"] in ("kubectl", "istioctl") and "version" not in e["argv"]
    }
    assert configs == {"/etc/rancher/k3s/k3s.yaml"}

    pods = {p["metadata"]["name"]: p for p in labsim.objects("Pod", "default")}
    assert {"pod1", "pod2"} <= set(pods)
    assert {c["name"] for c in pods["pod1"]["spec"]["containers"]} == {"netshoot", "istio-proxy"}

    home = lab_dir(labsim)
    state = json.loads((home / "state.json").read_text())
    assert all(record["done"] for record in state["steps"].values()) and len(state["steps"]) == 10
    kiali = next(s for s in labsim.objects("Service", "istio-system") if s["metadata"]["name"] == "kiali")
    assert kiali["spec"]["type"] == "NodePort"
    assert state["facts"]["kiali_node_port"] == kiali["spec"]["ports"][0]["nodePort"]
    assert state["spec"]["istio_version"] == "1.23.2"
    assert stat.S_IMODE((home / "known_hosts").stat().st_mode) == 0o600
    assert len((home / "known_hosts").read_text().splitlines()) == 4
    ssh_config = home / "ssh_config"
    plain_ssh = subprocess.run(
        ["ssh", "-F", str(ssh_config), "-o", "BatchMode=yes", "k3s-s", "echo", "hello-from-k3s-s"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert plain_ssh.stdout.strip() == "hello-from-k3s-s", plain_ssh.stderr

    status = cli("status")
    assert status.returncode == 0 and "CREATE_COMPLETE" in status.stdout
    assert "istio 1.23.2" in status.stdout and status.stdout.count("running") == 4
    assert "Deadline: deletes itself at" in status.stdout and "so far" in status.stdout
    assert cli("extend", "--ttl", "2h").returncode == 0
    assert scheduler.get_schedule(Name="lab-egress")["ScheduleExpression"] < created, "6h moved to 2h"

    before = len(labsim.commands())
    again = cli("up")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already done") == 9, again.stdout  # every step but preflight
    assert _installs(labsim.commands()[before:]) == [], "a second up installs nothing"

    down = cli("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "4 instances terminated" in down.stdout
    ec2 = boto3.client(
        "ec2",
        endpoint_url=labsim.env["AWS_ENDPOINT_URL"],
        region_name=labsim.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    states = {i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    assert states == {"terminated"}
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert scheduler.list_schedules()["Schedules"] == [], "the deadline goes with the lab"
    assert "deadline schedule and role gone" in down.stdout
    # The simulator stops a node's sshd when its instance terminates: nothing answers any more.
    deadline = time.monotonic() + 10
    while any(labsim.address(n) for n in NODES) and time.monotonic() < deadline:
        labsim.check()
        time.sleep(0.1)
    assert not any(labsim.address(n) for n in NODES)
    assert not home.exists()
    assert cli("down").returncode == 0
