"""Joining hops and the verdict, on real-format lines (shapes: tests/trace/lines.py), amid startup
lines, unrelated traffic, a decoy from another client and retries."""

from __future__ import annotations

from datetime import datetime, timezone

from lab import verdicts
from lab.trace import ProxyLog, Target, trace
from lab.trace.proxylog import CLIENT, GATEWAY

from . import lines as L

WIKI_URL = "https://en.wikipedia.org/wiki/Main_Page"


def client(*lines: str, sidecar: bool = True) -> ProxyLog:
    log = ProxyLog.read("default/pod1", CLIENT, "\n".join([*L.STARTUP, *lines]), ip=L.POD1)
    log.has_sidecar = sidecar
    return log


def sni_gateway(*lines: str) -> ProxyLog:
    return ProxyLog.read(
        "istio-egress/istio-egressgateway-sni-5d9c7b6f4-x2x9q",
        GATEWAY,
        "\n".join([*L.STARTUP, *lines]),
        L.SNI_GW,
    )


def demo_gateway(*lines: str) -> ProxyLog:
    return ProxyLog.read(
        "istio-system/istio-egressgateway-7b9c6f5d4-abcde",
        GATEWAY,
        "\n".join([*L.STARTUP, *lines]),
        L.DEMO_GW,
    )


def test_egress_sni_goes_through_the_gateway_and_its_internal_listener_despite_the_decoy() -> None:
    gateway = sni_gateway(L.DECOY_GATEWAY, L.DECOY_INTERNAL, L.SNI_GATEWAY, L.SNI_INTERNAL)

    result = trace(
        client(L.INBOUND, L.SNI_CLIENT, L.WIKIMEDIA_PASSTHROUGH),
        [demo_gateway(), gateway],
        Target.parse(WIKI_URL),
    )

    assert result.verdict == verdicts.EGRESS_GATEWAY
    assert [h.role for h in result.hops] == ["client sidecar", "gateway", "internal listener"]
    assert [h.line.raw for h in result.hops] == [L.SNI_CLIENT, L.SNI_GATEWAY, L.SNI_INTERNAL]
    assert result.gateways == [gateway.proxy]
    assert f"{L.WIKI}:443 through dynamic_forward_proxy_cluster" in result.sentence


def test_the_gateway_is_found_from_its_own_lines_when_its_ip_is_unknown() -> None:
    gateway = sni_gateway(L.SNI_GATEWAY, L.SNI_INTERNAL)
    gateway.ip = None  # offline: only the log says where the gateway listens

    result = trace(client(L.SNI_CLIENT), [gateway], Target.parse(WIKI_URL))

    assert result.verdict == verdicts.EGRESS_GATEWAY


def test_a_gateway_line_only_from_another_client_is_not_this_request() -> None:
    result = trace(
        client(L.SNI_CLIENT), [sni_gateway(L.DECOY_GATEWAY, L.DECOY_INTERNAL)], Target.parse(WIKI_URL)
    )

    assert result.verdict == verdicts.DROPPED
    assert f"DOWNSTREAM_REMOTE_ADDRESS {L.POD1}:53308" in result.sentence


def test_a_gateway_line_from_before_the_request_is_not_this_request() -> None:
    # The same client port reused: an earlier run's connection, before the request began.
    stale = L.SNI_GATEWAY.replace("[2024-10-08T10:31:02.121Z]", "[2024-10-08T10:30:55.004Z]")
    since = datetime(2024, 10, 8, 10, 31, 2, 100000, tzinfo=timezone.utc)
    target = Target.parse(WIKI_URL, since=since)

    assert (
        trace(client(L.SNI_CLIENT), [sni_gateway(stale, L.SNI_INTERNAL)], target).verdict == verdicts.DROPPED
    )
    assert trace(client(L.SNI_CLIENT), [sni_gateway(stale)], Target.parse(WIKI_URL)).verdict == (
        verdicts.DROPPED  # joined, but its continuation is missing: it did not go on
    )


def test_the_study_notes_passthrough_without_sni_joins_only_by_the_connected_ip() -> None:
    logs = client(L.PASSTHROUGH_NO_SNI)

    with_ip = trace(logs, [demo_gateway()], Target.parse(WIKI_URL, remote_ip=L.WIKI))
    without = trace(logs, [demo_gateway()], Target.parse(WIKI_URL))

    assert with_ip.verdict == verdicts.PASSTHROUGH
    assert "no gateway saw it" in with_ip.sentence
    assert without.verdict == verdicts.NO_EVIDENCE
    assert "--remote-ip" in without.sentence


def test_a_passthrough_with_another_sni_on_the_same_ip_is_not_this_request() -> None:
    result = trace(client(L.WIKIMEDIA_PASSTHROUGH), [], Target.parse(WIKI_URL, remote_ip=L.WIKI))
    assert result.verdict == verdicts.NO_EVIDENCE

    wikimedia = trace(client(L.WIKIMEDIA_PASSTHROUGH), [], Target.parse("https://www.wikimedia.org/"))
    assert wikimedia.verdict == verdicts.PASSTHROUGH


def test_registry_only_refusals_are_blackhole() -> None:
    tls = trace(client(L.BLACKHOLE_TLS), [], Target.parse("https://edition.cnn.com/", remote_ip=L.CNN))
    plain = trace(client(L.BLOCK_ALL_HTTP), [], Target.parse("http://edition.cnn.com/politics"))

    assert (tls.verdict, plain.verdict) == (verdicts.BLACKHOLE, verdicts.BLACKHOLE)
    assert "BlackHoleCluster" in tls.sentence and "block_all (502)" in plain.sentence


def test_a_service_entry_host_straight_from_the_sidecar_is_direct() -> None:
    result = trace(client(L.DIRECT_GOOGLE), [demo_gateway()], Target.parse("https://www.google.com/"))
    assert result.verdict == verdicts.DIRECT
    assert "outbound|443||www.google.com" in result.sentence


def test_http_joins_the_gateway_by_request_id_and_retries_give_several_gateway_lines() -> None:
    gateway = demo_gateway(L.HTTP_GATEWAY_FAILED, L.HTTP_GATEWAY)

    result = trace(client(L.HTTP_CLIENT), [gateway], Target.parse("http://edition.cnn.com/politics"))

    assert result.verdict == verdicts.EGRESS_GATEWAY
    assert [h.line.raw for h in result.hops] == [L.HTTP_CLIENT, L.HTTP_GATEWAY_FAILED, L.HTTP_GATEWAY]
    assert result.gateways == [gateway.proxy]
    assert any("retried" in note for note in result.notes)
    assert "failed" not in result.sentence  # the last attempt succeeded


def test_an_upstream_failure_after_the_gateway_is_still_the_gateway_path_and_is_said() -> None:
    result = trace(
        client(L.HTTP_CLIENT),
        [demo_gateway(L.HTTP_GATEWAY_FAILED)],
        Target.parse("http://edition.cnn.com/politics"),
    )

    assert result.verdict == verdicts.EGRESS_GATEWAY
    assert result.sentence.endswith("the upstream then failed (UF,URX)")


def test_no_client_line_says_what_the_cluster_suggests() -> None:
    target = Target.parse(WIKI_URL)
    no_sidecar = trace(client(sidecar=False), [], target)
    logging_off = trace(client(), [], target)
    other = trace(client(L.DIRECT_GOOGLE), [], target)

    assert {no_sidecar.verdict, logging_off.verdict, other.verdict} == {verdicts.NO_EVIDENCE}
    assert "no istio-proxy container" in no_sidecar.sentence
    assert "access logging looks off" in logging_off.sentence
    assert "none for en.wikipedia.org:443" in other.sentence


def test_unknown_lines_are_reported_with_their_proxy() -> None:
    odd = '{"upstream_cluster":"PassthroughCluster"}'
    result = trace(
        client(odd, L.SNI_CLIENT), [sni_gateway(L.SNI_GATEWAY, L.SNI_INTERNAL)], Target.parse(WIKI_URL)
    )

    assert result.unknown == [("default/pod1", odd)]
    assert result.verdict == verdicts.EGRESS_GATEWAY


def test_several_client_lines_trace_the_last_and_say_so() -> None:
    earlier = L.PASSTHROUGH_NO_SNI.replace("[2024-10-08T10:31:02.118Z]", "[2024-10-08T10:31:01.002Z]")
    result = trace(
        client(earlier, L.SNI_CLIENT),
        [sni_gateway(L.SNI_GATEWAY, L.SNI_INTERNAL)],
        Target.parse(WIKI_URL, remote_ip=L.WIKI),
    )

    assert result.verdict == verdicts.EGRESS_GATEWAY
    assert any(note.startswith("2 lines of default/pod1") for note in result.notes)
