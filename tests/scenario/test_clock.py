"""Log reads start at k3s-s's clock, not the laptop's: the log lines carry the cluster's timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.scenario.cluster_state import cluster_time
from lab.scenario.results import PASSED

from .fakes import FakeCluster, ok
from .helpers import FIXED_NOW, make_engine, write_scenario
from .test_engine import GATEWAY_LOG, PASSTHROUGH_LOG


def cluster_with_stamped_logs(now: datetime, earlier: list[tuple[timedelta, str]]) -> FakeCluster:
    """A cluster whose clock says `now`, whose gateway log already holds lines from earlier runs, and
    where each curl adds the request's line a moment after it starts; `kubectl logs --since-time`
    answers only the lines stamped at or after that time, as the kubelet does."""
    cluster = FakeCluster()
    cluster.now = now
    log = [(now + offset, text) for offset, text in earlier]

    def curl(args: tuple[str, ...]) -> tuple[int, str, str]:
        log.append((cluster.now + timedelta(milliseconds=200), GATEWAY_LOG))
        return ok("<title>Wikipedia, the free encyclopedia</title>\n")

    def logs(args: tuple[str, ...]) -> tuple[int, str, str]:
        since = next(a for a in args if a.startswith("--since-time=")).split("=", 1)[1]
        # kubectl sends sinceTime in whole seconds (k8s.io/apimachinery pkg/apis/meta/v1/time.go,
        # MarshalQueryParameter: RFC 3339); --timestamps puts the kubelet's stamp in front.
        start = datetime.fromisoformat(since.replace("Z", "+00:00")).replace(microsecond=0)
        stamped = "--timestamps" in args
        return ok(
            "".join(
                (f"{stamp:%Y-%m-%dT%H:%M:%S.%f}000Z " if stamped else "") + text
                for stamp, text in log
                if stamp >= start
            )
        )

    cluster.exec, cluster.logs = curl, logs
    return cluster


@pytest.mark.parametrize(
    ("cluster_now", "earlier"),
    [
        # laptop 5 s ahead: its time would start the read after the request's line
        (FIXED_NOW - timedelta(seconds=5), []),
        # laptop 90 s behind: its time would count an earlier run's PassthroughCluster line
        (FIXED_NOW + timedelta(seconds=90), [(timedelta(seconds=-60), PASSTHROUGH_LOG)]),
        # same clock: an earlier run's line 0.3 s before, in the same second, is not this run's
        (FIXED_NOW, [(timedelta(milliseconds=-300), PASSTHROUGH_LOG)]),
    ],
    ids=["laptop-ahead", "laptop-behind", "same-second"],
)
def test_the_log_check_sees_exactly_the_lines_since_the_exec_by_the_cluster_clock(
    tmp_path: Path, cluster_now: datetime, earlier: list[tuple[timedelta, str]]
) -> None:
    cluster = cluster_with_stamped_logs(cluster_now, earlier)
    engine, out = make_engine(cluster, tmp_path / "lab")

    result = engine.run(write_scenario(tmp_path))

    assert result.passed, out.getvalue()
    assert {c.status for c in result.cases} == {PASSED}


def test_each_exec_step_reads_the_clock_again(tmp_path: Path) -> None:
    cluster = cluster_with_stamped_logs(FIXED_NOW, [])
    engine, _ = make_engine(cluster, tmp_path / "lab")

    engine.run(write_scenario(tmp_path))

    dates = [args for tool, args, _ in cluster.calls if tool == "sh"]
    assert dates == [("date", "-u", "+%Y-%m-%dT%H:%M:%S.%NZ")] * 2, "the snapshot and the exec step"
    verbs = cluster.verbs()
    assert verbs[verbs.index("kubectl exec") - 1] == "sh date"


@pytest.mark.parametrize(
    ("printed", "expected"),
    [
        ("2024-11-26T12:27:03.250001789Z\n", "2024-11-26T12:27:03.250001Z"),
        ("2024-11-26T12:27:03.5Z\n", "2024-11-26T12:27:03.500000Z"),
        ("2024-11-26T12:27:03Z\n", "2024-11-26T12:27:03.000000Z"),
    ],
)
def test_the_cluster_time_is_cut_to_microseconds_never_rounded_up(printed: str, expected: str) -> None:
    cluster = FakeCluster()
    cluster.shell = lambda args: ok(printed)
    assert cluster_time(cluster) == expected


def test_a_clock_that_prints_something_else_is_one_line() -> None:
    cluster = FakeCluster()
    cluster.shell = lambda args: ok("Tue Nov 26 12:27:03 UTC 2024\n")
    with pytest.raises(LabError) as error:
        cluster_time(cluster)
    assert str(error.value) == (
        "k3s-s: `date -u +%Y-%m-%dT%H:%M:%S.%NZ` printed 'Tue Nov 26 12:27:03 UTC 2024', not a time"
    )
