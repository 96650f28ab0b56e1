"""Scenario files: the six shipped ones load; a mistake is one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import LabError
from lab.scenario.model import Apply, Exec, Logs, load_catalog, load_scenario, select

from .helpers import DEMO, SIX, expect_entries, scenario_files, write_scenario


def test_the_catalog_has_the_six_scenarios_in_course_order() -> None:
    assert [s.name for s in load_catalog()] == SIX


def test_the_catalog_reads_each_file_title_and_one_assertion_per_expect_value() -> None:
    files = scenario_files()
    assert sorted(files) == sorted(SIX)
    assert [(s.title, len(s.assertions)) for s in load_catalog()] == [
        (files[name]["title"], expect_entries(files[name])) for name in SIX
    ]


@pytest.mark.parametrize("scenario", load_catalog(), ids=lambda s: s.name)
def test_every_scenario_proves_the_path_not_just_the_http_result(scenario) -> None:
    kinds = [type(step.action) for step in scenario.steps]
    assert Apply in kinds and Exec in kinds
    # A scenario passes on evidence of the path (the access logs, traced), never on curl alone.
    curls = [
        step for step in scenario.steps if isinstance(step.action, Exec) and step.action.command[0] == "curl"
    ]
    assert curls and all(step.traces_path for step in curls)
    assert all(step.assertions for step in scenario.steps if isinstance(step.action, (Exec, Logs)))
    assert len(scenario.title) <= 100 and scenario.teaches and scenario.explains


def test_defaults_fill_in_the_client_pod_and_timeouts(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, DEMO.replace("    timeout: 0.3\n", ""))
    apply, wait, curl, logs = scenario.steps
    assert isinstance(curl.action, Exec)
    assert (curl.action.target.namespace, curl.action.target.pod, curl.action.target.container) == (
        "default",
        "pod1",
        "netshoot",
    )
    assert (apply.timeout, wait.timeout, curl.timeout, logs.timeout) == (60.0, 180.0, 60.0, 60.0)
    assert apply.name == "apply namespace.yaml, config.yaml"
    assert [a.description for a in logs.assertions] == [
        "istio-proxy log of app=gw in demo contains 'sni_cluster'",
        "istio-proxy log of app=gw in demo does not contain 'PassthroughCluster'",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("stdoutContains: [Wikipedia]", "stdoutContain: [Wikipedia]"),
            "steps[2].expect: Additional properties are not allowed ('stdoutContain' was unexpected)",
        ),
        (
            ("timeout: 0.3\n    exec", "timeout: soon\n    exec"),
            "steps[2].timeout: 'soon' is not of type 'number'",
        ),
        (
            ("teaches:", "teach: x\nteaches:"),
            "(top level): Additional properties are not allowed ('teach' was unexpected)",
        ),
        (
            ("REGISTRY_ONLY", "REGISTRY"),
            "mesh.outboundTrafficPolicy: 'REGISTRY' is not one of ['ALLOW_ANY', 'REGISTRY_ONLY']",
        ),
        (("exitCode: 0", "exitCode: '0'"), "steps[2].expect.exitCode: '0' is not of type 'integer'"),
        (("config.yaml]", "konfig.yaml]"), "steps[0].apply: manifest 'konfig.yaml' not found in"),
        (("name: demo", "name: other"), "name: 'other' must match the file name 'demo'"),
        (
            ("stdoutContains: [Wikipedia]", "stdoutMatches: ['Wiki(pedia']"),
            "steps[2].expect.stdoutMatches: 'Wiki(pedia' is not a valid regular expression: "
            "missing ), unterminated subpattern at position 4",
        ),
        (
            ("notContains: [PassthroughCluster]", "matches: [sni_cluster, '[a-']"),
            "steps[3].expect.matches: '[a-' is not a valid regular expression: "
            "unterminated character set at position 0",
        ),
    ],
    ids=[
        "typo",
        "type",
        "unknown key",
        "enum",
        "exit code type",
        "missing manifest",
        "name",
        "exec regex",
        "log regex",
    ],
)
def test_a_mistake_is_one_line_naming_the_file_and_the_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write_scenario(tmp_path).path
    path.write_text(DEMO.replace(*change))
    with pytest.raises(LabError) as caught:
        load_scenario(path, tmp_path / "manifests")
    assert str(caught.value).startswith(f"{path}: ")
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_a_logs_step_needs_an_exec_before_it(tmp_path: Path) -> None:
    text = DEMO.replace(
        "  - name: curl en.wikipedia.org",
        "  - name: early\n    logs: {namespace: demo, pod: p, container: c}\n    expect: {contains: [x]}\n  - name: curl en.wikipedia.org",
    )
    with pytest.raises(LabError, match=r"steps\[2\]\.logs: a logs step reads logs since the last exec step"):
        write_scenario(tmp_path, text)


def test_an_exec_step_without_expect_and_an_apply_with_expect_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"steps\[2\]: 'expect' is a required property"):
        write_scenario(tmp_path, DEMO.replace("    expect: {exitCode: 0, stdoutContains: [Wikipedia]}\n", ""))
    with pytest.raises(LabError, match=r"steps\[0\]"):
        write_scenario(tmp_path, DEMO.replace("config.yaml]\n", "config.yaml]\n    expect: {exitCode: 0}\n"))


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    path = write_scenario(tmp_path).path
    path.write_text("name: [demo\n")
    with pytest.raises(LabError) as caught:
        load_scenario(path, tmp_path / "manifests")
    assert (
        caught.value.message == f"{path}: line 2: not valid YAML: expected ',' or ']', but got '<stream end>'"
    )


def test_an_unknown_name_lists_the_valid_names() -> None:
    with pytest.raises(LabError) as caught:
        select(load_catalog(), ["egress-snii"], run_all=False)
    assert caught.value.message == "unknown scenario 'egress-snii'"
    assert caught.value.hint == f"valid names: {', '.join(SIX)}"


def test_all_runs_every_scenario_and_refuses_names_with_it() -> None:
    assert [s.name for s in select(load_catalog(), [], run_all=True)] == SIX
    with pytest.raises(LabError, match="not both"):
        select(load_catalog(), ["egress-sni"], run_all=True)
    with pytest.raises(LabError, match="which scenario"):
        select(load_catalog(), [], run_all=False)
