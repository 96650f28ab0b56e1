"""The parser reads real-format lines field by field (shapes and their sources: tests/trace/lines.py)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lab.trace.logline import DEFAULT_FORMAT, INTERNAL_LISTENER_FORMAT, AccessLine, UnknownLine, parse_line

from . import lines as L


def parsed(text: str) -> AccessLine:
    line = parse_line(text)
    assert isinstance(line, AccessLine), line
    return line


def test_a_tls_line_of_the_default_format_field_by_field() -> None:
    line = parsed(L.SNI_CLIENT)
    assert line.format == DEFAULT_FORMAT
    assert line.start_time == datetime(2024, 10, 8, 10, 31, 2, 118000, tzinfo=timezone.utc)
    assert (line.method, line.path, line.protocol, line.response_code) == (None, None, None, 0)
    assert line.tcp and not line.inbound and not line.internal
    assert (line.bytes_received, line.bytes_sent, line.duration) == (839, 5123, 131)
    assert line.upstream_host == f"{L.SNI_GW}:8443"
    assert line.upstream_cluster == f"outbound|443|wildcard|{L.SNI_GW_FQDN}"
    assert line.upstream_local_address == f"{L.POD1}:53308"
    assert line.downstream_local_address == f"{L.WIKI}:443"
    assert line.downstream_remote_address == f"{L.POD1}:48160"
    assert (line.sni, line.route_name, line.response_flags) == ("en.wikipedia.org", None, frozenset())


def test_an_http_line_keeps_request_id_authority_and_details() -> None:
    line = parsed(L.HTTP_GATEWAY_FAILED)
    assert (line.method, line.path, line.protocol) == ("GET", "/politics", "HTTP/2")
    assert line.response_code == 503
    assert line.response_code_details == "upstream_reset_before_response_started{connection_failure}"
    assert (line.request_id, line.authority, line.user_agent) == (L.RID, "edition.cnn.com", "curl/8.7.1")
    assert not line.tcp


def test_response_flags_are_a_set_in_either_order() -> None:
    # Envoy 1.30+ prints flags in insertion order (URX,UF); older versions UF,URX.
    newer = parsed(L.HTTP_GATEWAY_FAILED)
    older = parsed(L.HTTP_GATEWAY_FAILED.replace("URX,UF", "UF,URX"))
    assert newer.response_flags == older.response_flags == {"UF", "URX"}


def test_the_envoyfilter_internal_listener_line_is_its_own_format() -> None:
    line = parsed(L.SNI_INTERNAL)
    assert line.format == INTERNAL_LISTENER_FORMAT and line.internal
    assert (line.upstream_cluster, line.sni) == ("dynamic_forward_proxy_cluster", "en.wikipedia.org")
    assert line.downstream_remote_address == "envoy://internal_client_address/"


def test_dashes_are_none_and_the_block_all_route_is_read() -> None:
    line = parsed(L.BLOCK_ALL_HTTP)
    assert (line.upstream_host, line.upstream_cluster, line.upstream_local_address) == (None, None, None)
    assert (line.route_name, line.response_code, line.response_code_details) == (
        "block_all",
        502,
        "direct_response",
    )


@pytest.mark.parametrize("text", [*L.STARTUP, "", "   "])
def test_pilot_agent_and_envoy_own_lines_are_skipped(text: str) -> None:
    assert parse_line(text) is None


def test_envoys_default_log_format_is_skipped_too() -> None:
    assert parse_line("[2024-10-08 10:30:49.601][15][info][upstream] cds: add 23 cluster(s)") is None


@pytest.mark.parametrize(
    "text",
    [
        '{"start_time":"2024-10-08T10:31:02.118Z","upstream_cluster":"PassthroughCluster"}',  # JSON encoding
        L.SNI_CLIENT.rsplit(" ", 1)[0],  # a field missing
        L.SNI_CLIENT.replace("[2024-10-08T10:31:02.118Z]", "[yesterday]"),
    ],
    ids=["json", "field-missing", "bad-time"],
)
def test_other_formats_are_unknown_never_guessed(text: str) -> None:
    assert parse_line(text) == UnknownLine(text)


def test_a_kubectl_timestamp_prefix_is_read_past() -> None:
    line = parsed("2024-10-08T10:31:02.300123456Z " + L.SNI_CLIENT)
    assert line.raw == L.SNI_CLIENT
