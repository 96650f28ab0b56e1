"""The simulated `cloud-init status`: the JSON shape and exit codes of Ubuntu 22.04's cloud-init."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.labsim import node_tools
from tests.labsim.config import Layout, SimConfig

# The keys canonical/cloud-init's `print_status` prints (ubuntu/24.1.3-0ubuntu1_22.04.5,
# cloudinit/cmd/status.py), plus the four stages of status.json's "v1" merged in.
KEYS = {
    "boot_status_code",
    "datasource",
    "detail",
    "errors",
    "extended_status",
    "last_update",
    "recoverable_errors",
    "stage",
    "status",
    "init-local",
    "init",
    "modules-config",
    "modules-final",
}


def _run(tmp_path: Path, capsys, args: list[str], booted_ago: float, took: float = 10.0, **faults):
    layout = Layout(tmp_path)
    layout.node_dir("k3s-w1").mkdir(parents=True, exist_ok=True)
    layout.instance_file("k3s-w1").write_text(json.dumps({"booted_at": time.time() - booted_ago}))
    config = SimConfig()
    config.delays.cloud_init = took
    for name, nodes in faults.items():
        setattr(config.faults, name, nodes)
    code = node_tools.cloud_init(SimpleNamespace(layout=layout, node="k3s-w1", config=config), args)
    return code, capsys.readouterr().out


def test_running_reports_its_stage(tmp_path: Path, capsys) -> None:
    code, out = _run(tmp_path, capsys, ["status", "--format", "json"], booted_ago=5)
    status = json.loads(out)
    assert code == 0 and set(status) == KEYS
    assert (status["status"], status["extended_status"], status["stage"]) == (
        "running",
        "running",
        "modules-final",
    )
    assert status["modules-final"]["finished"] is None and status["init"]["finished"] is not None
    assert out == json.dumps(status, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"


def test_degraded_exits_0_and_lists_recoverable_errors(tmp_path: Path, capsys) -> None:
    code, out = _run(tmp_path, capsys, ["status", "--format", "json"], 20, cloud_init_degraded=["k3s-w1"])
    status = json.loads(out)
    assert code == 0, "Ubuntu's status-retain-recoverable-error-exit-code patch"
    assert (status["status"], status["extended_status"], status["stage"]) == ("done", "degraded done", None)
    assert status["errors"] == [] and list(status["recoverable_errors"]) == ["DEPRECATED"]
    assert status["modules-final"]["recoverable_errors"] == status["recoverable_errors"]


def test_error_exits_1_with_its_errors(tmp_path: Path, capsys) -> None:
    code, out = _run(tmp_path, capsys, ["status", "--format", "json"], 20, cloud_init_fail=["k3s-w1"])
    status = json.loads(out)
    assert code == 1 and (status["status"], status["extended_status"]) == ("error", "error - done")
    assert status["errors"] and "scripts_user" in status["errors"][0]


@pytest.mark.parametrize("fmt", [["--format", "json"], []])
def test_wait_prints_dots_only_in_tabular_format(tmp_path: Path, capsys, fmt: list[str]) -> None:
    code, out = _run(tmp_path, capsys, ["status", "--wait", *fmt], booted_ago=0, took=0.6)
    assert code == 0
    if fmt:
        assert json.loads(out)["status"] == "done"
    else:
        assert out.startswith(".") and out.endswith("\nstatus: done\n")
