"""The log window (second precision of --since-time), the `--logs` folder layout, curl's connected IP."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from lab.errors import LabError
from lab.trace import read_folder
from lab.trace.live import remote_ip, with_remote_ip
from lab.trace.offline import proxy_name
from lab.trace.proxylog import since, window_start

from . import lines as L

START = datetime(2024, 10, 8, 10, 31, 2, 700000, tzinfo=timezone.utc)


def test_the_window_asks_a_whole_second_earlier() -> None:
    # kubectl sends --since-time as RFC 3339 seconds: asking for .700 gets the whole second 02 anyway.
    assert window_start(START) == "2024-10-08T10:31:01Z"
    assert window_start(START.replace(microsecond=0)) == "2024-10-08T10:31:01Z"


def test_lines_before_the_start_in_the_same_second_are_dropped_by_their_own_stamp() -> None:
    answer = "\n".join(
        [
            f"2024-10-08T10:31:01.900000000Z {L.PASSTHROUGH_NO_SNI}",  # an earlier run, the second before
            f"2024-10-08T10:31:02.300000000Z {L.PASSTHROUGH_NO_SNI}",  # same second, before the start
            f"2024-10-08T10:31:02.700000000Z {L.SNI_CLIENT}",  # at the start
            f"2024-10-08T10:31:03.100000000Z {L.SNI_GATEWAY}",
        ]
    )
    assert since(answer, START) == f"{L.SNI_CLIENT}\n{L.SNI_GATEWAY}\n"


def test_the_logs_folder_is_one_file_per_proxy_named_namespace_dot_pod(tmp_path: Path) -> None:
    (tmp_path / "default.pod1.log").write_text(L.SNI_CLIENT + "\n")
    (tmp_path / "istio-egress.istio-egressgateway-sni-5d9c7b6f4-x2x9q.log").write_text(L.SNI_GATEWAY)
    (tmp_path / "result.json").write_text("{}")

    client, gateways = read_folder(tmp_path, "default/pod1")

    assert client.proxy == "default/pod1" and len(client.entries) == 1
    assert [g.proxy for g in gateways] == ["istio-egress/istio-egressgateway-sni-5d9c7b6f4-x2x9q"]
    assert proxy_name(Path("ns.pod.with.dots.log")) == "ns/pod.with.dots"


def test_a_folder_without_the_client_names_what_it_found(tmp_path: Path) -> None:
    (tmp_path / "istio-system.gw.log").write_text("")
    with pytest.raises(LabError) as error:
        read_folder(tmp_path, "default/pod1")
    assert "default.pod1.log" in error.value.message and "istio-system/gw" in str(error.value.hint)


def test_curl_reports_the_ip_it_connected_to_on_stderr_leaving_stdout_alone() -> None:
    mark = "%{stderr}lab-remote-ip=%{remote_ip}\\n"
    assert with_remote_ip(["curl", "-sS", "https://x/"]) == ["curl", "-w", mark, "-sS", "https://x/"]
    assert with_remote_ip(["curl", "-w", "%{http_code}", "https://x/"]) == [
        "curl",
        "-w",
        "%{http_code}" + mark,
        "https://x/",
    ]
    assert with_remote_ip(["wget", "https://x/"]) == ["wget", "https://x/"]
    ip, rest = remote_ip("lab-remote-ip=185.15.59.224\ncurl: (35) OpenSSL SSL_connect\n")
    assert (ip, rest) == ("185.15.59.224", "curl: (35) OpenSSL SSL_connect\n")
    assert remote_ip("lab-remote-ip=\n") == (None, "")
