"""An unexpected error (a bug, not a lesson) still gets the cleanup and the leak check; the result
carries it, and the CLI raises it after the reports (one line, exit code 1: tests/scenario/test_cli.py)."""

from __future__ import annotations

from pathlib import Path

from lab.scenario.results import ERROR, FAILED, LEAK_CHECK, PASSED

from .fakes import MESH, FakeCluster, ok
from .helpers import make_engine, write_scenario
from .test_engine import GATEWAY_LOG


def passing_cluster() -> FakeCluster:
    cluster = FakeCluster()
    cluster.exec = lambda args: ok("Wikipedia")
    cluster.logs = lambda args: ok(GATEWAY_LOG)
    return cluster


def test_an_unexpected_error_in_a_step_still_cleans_up_and_checks_for_leaks(tmp_path: Path) -> None:
    cluster = passing_cluster()

    def broken_parser(args: tuple[str, ...]) -> tuple[int, str, str]:
        raise ValueError("cannot parse the curl output")

    cluster.exec = broken_parser
    engine, out = make_engine(cluster, tmp_path / "lab")

    result = engine.run(write_scenario(tmp_path))

    assert isinstance(result.bug, ValueError) and not result.passed

    assert cluster.verbs().count("kubectl delete") == 2
    assert cluster.mesh == MESH, "REGISTRY_ONLY was put back"
    assert not cluster.istio and "demo" not in cluster.namespaces
    cases = {c.name: c for c in result.cases}
    assert cases["unexpected error"].status == ERROR
    assert cases["unexpected error"].received == "unexpected ValueError: cannot parse the curl output"
    assert cases[LEAK_CHECK].status == PASSED
    assert result.report_dir is not None and (result.report_dir / "result.json").is_file()
    assert "✗ demo failed: unexpected error" in out.getvalue()


def test_an_unexpected_error_in_one_undo_action_does_not_stop_the_others(tmp_path: Path) -> None:
    cluster = passing_cluster()
    deletes = []

    def first_delete_breaks(tool: str, args: tuple[str, ...]) -> None:
        if args[0] == "delete":
            deletes.append(args)
            if len(deletes) == 1:
                raise TypeError("unsupported operand")

    cluster.on_call = first_delete_breaks
    engine, _ = make_engine(cluster, tmp_path / "lab")

    result = engine.run(write_scenario(tmp_path))

    assert isinstance(result.bug, TypeError)
    assert len(deletes) == 2 and cluster.mesh == MESH
    cases = {c.name: c for c in result.cases}
    assert cases["clean up: delete config.yaml"].received == "unexpected TypeError: unsupported operand"
    leak = cases[LEAK_CHECK]
    assert leak.status == FAILED and "left behind: ServiceEntry demo/wikipedia" in leak.received
