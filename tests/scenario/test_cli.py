"""The entry points tasks.py wires: listing, exit codes, JUnit XML, SIGINT counting."""

from __future__ import annotations

import os
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from invoke.exceptions import Exit

from lab import cli as lab_cli
from lab.config import Settings
from lab.errors import LabError, UsageError
from lab.progress import Progress
from lab.scenario import cli
from lab.scenario import engine as engine_module
from lab.scenario.engine import Interrupts
from lab.waiting import wait_until

from .fakes import FakeCluster, ok
from .helpers import DEMO, SIX, make_engine, scenario_files, write_scenario
from .test_engine import GATEWAY_LOG, PASSTHROUGH_LOG


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, FakeCluster]:
    """`run_scenarios` on the demo scenario with the fake cluster in place of the lab's."""
    cluster = FakeCluster()
    cluster.exec = lambda args: ok("Wikipedia")
    cluster.logs = lambda args: ok(GATEWAY_LOG)
    scenario = write_scenario(tmp_path)
    monkeypatch.setattr(cli, "load_catalog", lambda: [scenario])
    monkeypatch.setattr("lab.cluster.Cluster.for_lab", lambda settings: cluster)
    monkeypatch.setattr("lab.scenario.engine.load_analyzer", lambda: lambda paths, registry_only: [])
    return Settings(home=tmp_path / "home"), cluster


def test_scenarios_lists_names_and_titles(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run_list(Settings()) == 0
    files = scenario_files()
    rows = [line.split(None, 1) for line in capsys.readouterr().out.splitlines()]
    assert rows == [[name, files[name]["title"]] for name in SIX]


def test_an_unknown_name_fails_before_touching_the_lab(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="unknown scenario 'nope'") as caught:
        cli.run_scenarios(Settings(home=tmp_path), ["nope"], run_all=False, keep=False, junit=None)
    assert "egress-sni" in str(caught.value)


def test_exit_0_when_every_assertion_passed_and_junit_parses(lab, tmp_path: Path) -> None:
    settings, _ = lab
    junit = tmp_path / "out" / "junit.xml"

    assert cli.run_scenarios(settings, ["demo"], run_all=False, keep=False, junit=str(junit)) == 0

    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and root.get("failures") == "0" and root.get("tests") == "5"
    cases = root.findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == [
        "curl en.wikipedia.org: exit code is 0",
        "curl en.wikipedia.org: stdout contains 'Wikipedia'",
        "gateway log shows sni_cluster: istio-proxy log of app=gw in demo contains 'sni_cluster'",
        "gateway log shows sni_cluster: istio-proxy log of app=gw in demo does not contain 'PassthroughCluster'",
        "cleanup: namespaces and Istio resources are as before",
    ]
    assert all(len(c) == 0 for c in cases), "a passing testcase has no failure element"
    assert (settings.lab_dir / "reports").is_dir()


def test_exit_1_with_one_junit_testcase_per_assertion_and_the_failure_text(lab, tmp_path: Path) -> None:
    settings, cluster = lab
    cluster.logs = lambda args: ok(PASSTHROUGH_LOG)
    junit = tmp_path / "junit.xml"

    assert cli.run_scenarios(settings, [], run_all=True, keep=False, junit=str(junit)) == 1

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "demo"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "5",
        "2",
        "0",
        "0",
    )
    failure = suite.find(
        "testcase[@name=\"gateway log shows sni_cluster: istio-proxy log of app=gw in demo contains 'sni_cluster'\"]/failure"
    )
    assert failure is not None
    assert failure.text is not None and failure.text.startswith(
        "expected: istio-proxy log of app=gw in demo contains"
    )
    assert 'received: "203.0.113.7:443" PassthroughCluster' in failure.text


def test_exit_130_after_ctrl_c(lab, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, cluster = lab

    def press_ctrl_c(tool: str, args: tuple[str, ...]) -> None:
        if args[0] == "exec":
            os.kill(os.getpid(), signal.SIGINT)  # a real signal, handled by run_scenarios

    cluster.on_call = press_ctrl_c

    assert cli.run_scenarios(settings, ["demo"], run_all=False, keep=False, junit=None) == 130
    assert "kubectl delete" in cluster.verbs()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the handler is put back"


def test_an_unexpected_error_is_one_line_and_exit_1_after_cleanup_and_junit(lab, tmp_path: Path) -> None:
    settings, cluster = lab

    def broken(args: tuple[str, ...]) -> tuple[int, str, str]:
        raise KeyError("stdout")

    cluster.exec = broken
    junit = tmp_path / "junit.xml"

    with pytest.raises(Exit) as caught:
        lab_cli.run(lambda: cli.run_scenarios(settings, ["demo"], False, False, str(junit)))

    assert caught.value.code == 1
    assert caught.value.message == (
        "error: unexpected KeyError: 'stdout' → run again with --debug for the traceback, and please report it"
    )
    assert cluster.verbs().count("kubectl delete") == 2 and "demo" not in cluster.namespaces
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"


def test_the_step_timeout_cap_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_STEP_TIMEOUT", "2.5")
    assert cli._step_timeout_cap() == 2.5
    monkeypatch.setenv("LAB_STEP_TIMEOUT", "soon")
    with pytest.raises(UsageError, match="LAB_STEP_TIMEOUT='soon' is not a positive number"):
        cli._step_timeout_cap()


def test_a_capped_timeout_shortens_a_failing_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = FakeCluster()
    cluster.exec = lambda args: (35, "", "curl: (35)")
    engine, _ = make_engine(cluster, tmp_path / "lab")
    engine.cap = 0.2
    scenario = write_scenario(tmp_path, DEMO.replace("timeout: 0.3", "timeout: 600"))
    deadlines: dict[str, float] = {}

    def recording_wait_until(check, *, timeout: float, what: str, **options):
        deadlines[what] = timeout
        return wait_until(check, timeout=timeout, what=what, **options)

    monkeypatch.setattr(engine_module, "wait_until", recording_wait_until)

    result = engine.run(scenario)

    assert not result.passed
    assert deadlines["curl en.wikipedia.org"] == 0.2, "the step's 600 s, capped"
    assert cluster.verbs().count("kubectl exec") >= 1


def test_sigint_is_counted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    interrupts = Interrupts()
    with cli._counting_sigint(interrupts, Progress(spinner=False)):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
    assert interrupts.count == 2
