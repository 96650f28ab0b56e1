"""`up` overlaps work that does not depend on each other, and still reads as a list of steps."""

from __future__ import annotations

import re

from tests.e2e.conftest import cli_for, lab_dir
from tests.labsim.sim import LabSim

CLUSTER = ("k3s-s", "k3s-w1", "k3s-w2")
IMAGES = ("nicolaka/netshoot:v0.13", "docker.io/istio/proxyv2:1.23.2")


def _first(entries: list[dict], words: str) -> dict:
    return next(e for e in entries if words in " ".join(e["argv"]))


def test_up_overlaps_independent_work_and_reports_each_step_once(labsim_factory) -> None:
    # netshoot's image takes 3.8 s to pull (190 MB at 2 s per 100 MB): far longer than its pods'
    # start, so pods that started without a pull prove the images were pulled beforehand.
    sim: LabSim = labsim_factory(cloud_init_delay=2.5, istio_ready_delay=2.0, image_pull_delay=2.0)
    up = cli_for(sim)("up")
    assert up.returncode == 0, up.stdout + up.stderr
    log = sim.commands()
    server = [e for e in log if e["node"] == "k3s-s"]
    boot = _first(server, "cloud-init status --wait")
    download = _first(server, "curl -fsSL")
    install = _first(server, "istioctl install")
    assert download["ts"] < boot["ended"], "istioctl is fetched while cloud-init runs"
    addons = _first(server, "samples/addons/kiali.yaml")
    assert addons["ts"] < install["ended"], "the add-ons are applied while Istio installs"
    for node in CLUSTER:
        pulls = [e for e in log if e["node"] == node and e["tool"] == "crictl"]
        assert [e["argv"][-1] for e in pulls] == list(IMAGES) and all(e["exit"] == 0 for e in pulls)
        assert pulls[0]["ts"] < install["ended"], f"{node} pulls while Istio installs"
    pods = _first(server, "--for=condition=Ready pod --timeout=300s -n default")
    assert pods["ended"] - pods["ts"] < 3.0, "the netshoot pods started without pulling netshoot"

    lines = up.stdout.splitlines()
    for title in (
        "Waiting for cloud-init",
        "Installing istioctl",
        "Installing Istio",
        "Installing Kiali",
        "Deploying the netshoot",
    ):
        assert sum(line.startswith(f"✓ {title}") for line in lines) == 1, title
    assert all(line.count("✓") <= 1 and line.count("•") <= 1 for line in lines), "no two lines run together"
    summary = re.search(
        r"ready in ([\d.]+)s of wall time \(the steps' own times below add up to ([\d.]+)s", up.stdout
    )
    assert summary and float(summary[2]) > float(summary[1]), (
        "side by side, the steps' times exceed the wall time"
    )
    assert re.search(r"^  netshoot +\d+\.\d+s$", up.stdout, re.M)


def test_a_failure_in_overlapped_work_is_its_own_steps_with_evidence(labsim_factory) -> None:
    sim: LabSim = labsim_factory(pull_rate_limited="k3s-w1")
    up = cli_for(sim)("up")
    assert up.returncode != 0
    assert "Traceback" not in up.stderr
    assert "step 'netshoot' failed: k3s-w1:" in up.stderr and "429 Too Many Requests" in up.stderr
    assert "✗ Deploying the netshoot client pods" in up.stdout
    bundles = list((lab_dir(sim) / "logs").iterdir())
    assert len(bundles) == 1 and str(bundles[0]) in up.stderr
    again = cli_for(sim)("up", "--until", "istio")
    assert again.returncode == 0, again.stdout + again.stderr
