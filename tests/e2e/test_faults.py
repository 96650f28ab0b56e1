"""Each fault the simulator injects, and what `up` must do about it."""

from __future__ import annotations

from tests.e2e.conftest import cli_for, lab_dir, read_until


def _no_traceback(result) -> None:
    assert "Traceback" not in result.stdout + result.stderr


def test_late_sshd_is_waited_for(labsim_factory) -> None:
    sim = labsim_factory(sshd_late="k3s-w1:3")
    up = cli_for(sim)("up", "--until", "cloud-init")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "waiting for SSH on k3s-w1" in up.stdout
    assert {e["node"] for e in sim.commands("cloud-init")} == {"k3s-s", "k3s-w1", "k3s-w2", "testpc"}


def test_sshd_restart_mid_provisioning_is_retried(labsim_factory) -> None:
    sim = labsim_factory(sshd_restart_on="install --set profile=demo")
    up = cli_for(sim)("up")
    assert up.returncode == 0, up.stdout + up.stderr
    installs = [e for e in sim.commands("istioctl") if "install" in e["argv"]]
    assert len(installs) == 2, "the dropped command ran again on a new connection"
    assert installs[0]["exit"] != 0 and installs[1]["exit"] == 0


def test_cloud_init_failure_names_the_node_and_writes_evidence(labsim_factory) -> None:
    sim = labsim_factory(cloud_init_fail="k3s-w2")
    up = cli_for(sim)("up")
    assert up.returncode != 0
    _no_traceback(up)
    assert "cloud-init failed on k3s-w2" in up.stderr
    bundles = list((lab_dir(sim) / "logs").iterdir())
    assert len(bundles) == 1 and str(bundles[0]) in up.stderr
    on_node = (sim.layout.node_root("k3s-w2") / "var/log/cloud-init-output.log").read_text()
    assert "[ERROR]  Download failed" in on_node and "[ERROR]  Download failed" in up.stderr, (
        "the tail is shown"
    )
    assert (bundles[0] / "k3s-w2" / "cloud-init-output.log").read_text() == on_node
    server_log = sim.layout.node_root("k3s-s") / "var/log/cloud-init-output.log"
    assert (bundles[0] / "k3s-s" / "cloud-init-output.log").read_text() == server_log.read_text()
    assert not sim.commands("istioctl"), "nothing is installed on a broken node set"


def test_transient_kubectl_errors_are_retried(labsim_factory) -> None:
    sim = labsim_factory(kubectl_transient=3)
    up = cli_for(sim)("up", "--until", "nodes-ready")
    assert up.returncode == 0, up.stdout + up.stderr
    exits = [e["exit"] for e in sim.commands("kubectl") if e["argv"][1:3] == ["get", "nodes"]]
    assert exits[:3] == [1, 1, 1] and exits[-1] == 0


def test_istiod_never_ready_fails_at_the_istio_step_with_its_logs(labsim_factory) -> None:
    sim = labsim_factory(istiod_never_ready=True, ready_timeout=3)
    up = cli_for(sim)("up")
    assert up.returncode != 0
    _no_traceback(up)
    assert "step 'istio' failed" in up.stderr
    install = next(e for e in sim.commands("istioctl") if "install" in e["argv"])
    assert "--readiness-timeout=3s" in install["argv"], "the step's own deadline bounds istioctl's wait"
    # The add-ons overlap Istio's install; the steps cut short by its failure say so and are not
    # reported as failures of their own, and no client pod is created without its injector.
    assert "step 'addons'" not in up.stderr and "step 'netshoot'" not in up.stderr
    assert "✗ Installing Istio" in up.stdout
    assert "✗ Installing Kiali" not in up.stdout and "✗ Deploying the netshoot" not in up.stdout
    assert "(stopped: step 'istio' did not finish" in up.stdout
    assert not [e for e in sim.commands("kubectl") if e["argv"][1:] == ["apply", "-f", "-"]]
    bundle = next((lab_dir(sim) / "logs").iterdir())
    istiod = (bundle / "k3s-s" / "istiod.log").read_text()
    assert "\terror\t" in istiod and not istiod.startswith("#"), (
        "istiod's own error lines, as the node served them"
    )


def test_changed_host_key_is_a_hard_error(labsim_factory) -> None:
    sim = labsim_factory()
    cli = cli_for(sim)
    assert cli("up", "--until", "ssh").returncode == 0
    known = (lab_dir(sim) / "known_hosts").read_text()
    sim.rotate_host_key("k3s-s")
    up = cli("up")
    assert up.returncode != 0
    _no_traceback(up)
    assert "k3s-s" in up.stderr and "different SSH host key" in up.stderr
    assert (lab_dir(sim) / "known_hosts").read_text() == known, "the pinned key is never replaced silently"
    assert not sim.commands("istioctl")


def test_ctrl_c_during_the_parallel_cloud_init_wait_stops_at_once(labsim_factory) -> None:
    import json
    import signal
    import subprocess
    import sys

    from tests.e2e.conftest import REPO
    from tests.scenario.e2e import environment

    sim = labsim_factory(cloud_init_delay=120)
    up = subprocess.Popen(
        [sys.executable, "-m", "invoke", "up"],
        cwd=REPO,
        env=environment(sim),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    read_until(up, "Waiting for cloud-init")
    up.send_signal(signal.SIGINT)
    # Far below cloud-init's 120 s: the workers' remote waits were cut, not waited out.
    out, err = up.communicate(timeout=30)
    assert up.returncode == 130, out + err
    assert "Nothing was deleted" in out and "interrupted" in err
    assert "Traceback" not in err
    state = json.loads((lab_dir(sim) / "state.json").read_text())
    assert state["stack_id"] and state["steps"]["ssh"]["done"], state["steps"]
    # The signal may land just before the step's own bookkeeping starts: then it has no record.
    assert not state["steps"].get("cloud-init", {}).get("done"), out
