"""Every settings mistake is one line naming its source and the fix, exit 2, never a traceback.

The walk runs the real Invoke program with tasks.py in this process (the same parser, tasks and
error boundary as `python -m invoke`, ~50 ms a run instead of ~1 s); the issue's own examples
also run as real processes, to show no traceback reaches the terminal.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Collection, Program

import tasks
from lab.config import setting_kinds
from tests.lifecycle.conftest import REPO, base_env

# A value each kind refuses when it arrives as text (variable, flag, or a YAML string).
# None: any text is valid for that kind; a YAML list is still refused.
BAD_TEXT = {
    "boolean": "ture",
    "seconds": "abc",
    "seconds-or-0": "-5",
    "integer:1:65535": "twenty-two",
    "path": None,
    "text::": None,
}
# Text kinds with a pattern or a check refuse words with a space in them.
BAD_PATTERNED = "two words"


def bad_text(kind_id: str) -> str | None:
    if kind_id in BAD_TEXT:
        return BAD_TEXT[kind_id]
    assert kind_id.startswith("text:"), f"add a bad value for the new kind {kind_id!r} to BAD_TEXT"
    return BAD_PATTERNED


def flag_settings() -> set[str]:
    """The settings `invoke up` takes as flags with a value (a boolean flag has none to get wrong)."""
    parameters = inspect.signature(tasks.up.body).parameters
    return {n for n, p in parameters.items() if n in setting_kinds() and not isinstance(p.default, bool)}


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    for name in [v for v in os.environ if v.startswith(("LAB_", "AWS_"))]:
        monkeypatch.delenv(name)
    for name, value in base_env(tmp_path / "home").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nobody listens: no AWS, ever
    monkeypatch.setenv("LAB_CONFIG", str(tmp_path / "lab.yaml"))
    monkeypatch.delenv("LAB_HOME")  # a variable would win over the file's `home`
    monkeypatch.chdir(tmp_path)  # the default home, .lab, is here

    def invoke(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        program = Program(namespace=Collection.from_module(tasks), name="lab")
        code = 0
        try:
            program.run(["invoke", *argv])
        except SystemExit as ended:
            code = int(ended.code or 0)
        for name in env or {}:
            monkeypatch.delenv(name)
        out = capsys.readouterr()
        return code, out.out + out.err

    return invoke


def assert_one_line(code: int, output: str, *names: str) -> None:
    assert code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and " → " in lines[0], output
    assert "Traceback" not in output
    for name in names:
        assert name in lines[0], (name, lines[0])


def test_every_setting_with_a_bad_value_from_each_source_is_one_line(run, tmp_path: Path) -> None:
    config = tmp_path / "lab.yaml"
    flags = flag_settings()
    walked = {"file": 0, "env": 0, "flag": 0}
    for name, kind in setting_kinds().items():
        config.write_text(f"{name}: [1, 2]\n")  # a list where one value belongs
        assert_one_line(*run("plan"), str(config), name)
        walked["file"] += 1
        bad = bad_text(kind.id)
        if bad is not None:
            config.write_text(f"{name}: {bad}\n")
            assert_one_line(*run("plan"), str(config), name, bad)
        config.unlink()
        if bad is None:
            continue
        variable = f"LAB_{name.upper()}"
        assert_one_line(*run("plan", env={variable: bad}), variable, bad)
        walked["env"] += 1
        if name in flags:
            flag = "--" + name.replace("_", "-")
            assert_one_line(*run("up", flag, bad), flag, bad)
            walked["flag"] += 1
    # The walk reached something from each source (and every setting from the file).
    assert walked["file"] == len(setting_kinds()) and walked["env"] >= 8 and walked["flag"] >= 5, walked


def test_a_misspelt_key_names_the_closest_one(run, tmp_path: Path) -> None:
    (tmp_path / "lab.yaml").write_text("instance-typ: t3.large\n")
    code, output = run("plan")
    assert_one_line(code, output, "'instance-typ'", "did you mean 'instance_type'?")


def test_a_valid_value_from_each_source_still_works(run, tmp_path: Path) -> None:
    (tmp_path / "lab.yaml").write_text("instance_type: t3.large\nallow-wide-ssh: yes\nssh_port: 2222\n")
    code, output = run("plan", env={"LAB_SSH_TIMEOUT": "30"})
    assert code == 0, output
    assert "t3.large" in output


# The issue's examples, as real processes.
EXAMPLES = [
    ("file", "instance-typ: t3.large\n", [], "did you mean 'instance_type'?"),
    ("file", "- name: a\n- region: b\n", [], "must be a mapping of settings"),
    ("file", "ssh_port: twenty-two\n", [], "ssh_port: 'twenty-two' is not a port number"),
    ("file", "allow_wide_ssh: ture\n", [], "allow_wide_ssh: 'ture' is not true or false"),
    ("file", "name: [egress\n", [], "not valid YAML"),
    ("env", "LAB_SSH_TIMEOUT=abc", [], "LAB_SSH_TIMEOUT: 'abc' is not a positive number of seconds"),
    ("flag", "", ["--name", "bad_name"], "--name: 'bad_name' is not a lab name"),
    ("flag", "", ["--name", "a" * 70], "is not a lab name"),
]


def test_the_issues_examples_are_one_line_as_real_processes(tmp_path: Path) -> None:
    started = []
    for index, (source, text, flags, _) in enumerate(EXAMPLES):
        env = {**base_env(tmp_path / "home"), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
        if source == "file":
            (tmp_path / f"{index}.yaml").write_text(text)
            env["LAB_CONFIG"] = str(tmp_path / f"{index}.yaml")
        elif source == "env":
            key, value = text.split("=", 1)
            env[key] = value
        command = [sys.executable, "-m", "invoke", "up" if flags else "plan", *flags]
        started.append(
            subprocess.Popen(
                command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    for process, (_, _, _, expected) in zip(started, EXAMPLES, strict=True):
        out, err = process.communicate(timeout=60)
        assert_one_line(process.returncode, out + err, expected)


def test_the_duration_kind_for_settings_such_as_a_time_to_live() -> None:
    from lab.config import DURATION

    assert [DURATION.parse(v) for v in ("6h", "30m", "1h30m", "2d", "none", "NONE")] == [
        "6h",
        "30m",
        "1h30m",
        "2d",
        "none",
        "NONE",
    ]
    for bad in ("forever", "6", "h", "6 h", "-1h", [6]):
        with pytest.raises(ValueError):
            DURATION.parse(bad)
