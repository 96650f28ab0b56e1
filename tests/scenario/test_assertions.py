"""Each assertion kind on what an exec or a log read returned; how received text is trimmed."""

from __future__ import annotations

import pytest

from lab.scenario.assertions import Assertion, Observed, http_status, trim

CURL_OK = Observed("<title>Wikipedia, the free encyclopedia</title>\n", 0, "")
CURL_35 = Observed(
    "", 35, "curl: (35) OpenSSL SSL_connect: SSL_ERROR_SYSCALL\ncommand terminated with exit code 35\n"
)
LOG = Observed(
    '[2024-11-26T12:00:00.000Z] "- - -" 0 - - - "-" 839 100 20 - "-" "-" "-" "-" "203.0.113.9:443" '
    "dynamic_forward_proxy_cluster 10.42.1.7:40000 envoy://sni_listener/ envoy://internal_client_address/ "
    "en.wikipedia.org -\n"
)


@pytest.mark.parametrize(
    ("assertion", "seen", "passed", "received"),
    [
        (Assertion("exitCode", 0), CURL_OK, True, "exit code 0"),
        (Assertion("exitCode", 35), CURL_35, True, "exit code 35: command terminated with exit code 35"),
        (Assertion("exitCode", 0), CURL_35, False, "exit code 35: command terminated with exit code 35"),
        (Assertion("stdoutContains", "the free encyclopedia"), CURL_OK, True, CURL_OK.stdout.strip()),
        (Assertion("stdoutContains", "Die freie"), CURL_OK, False, CURL_OK.stdout.strip()),
        (Assertion("stdoutNotContains", "301 Moved"), CURL_OK, True, "not found"),
        (Assertion("stdoutNotContains", "Wikipedia"), CURL_OK, False, CURL_OK.stdout.strip()),
        (Assertion("stdoutMatches", r"<title>.*</title>"), CURL_OK, True, CURL_OK.stdout.strip()),
        (Assertion("httpStatus", 200), Observed("200"), True, "HTTP status 200"),
        (Assertion("httpStatus", 200), Observed("301"), False, "HTTP status 301"),
        (Assertion("httpStatus", 200), Observed("hello"), False, "no HTTP status in hello"),
        (Assertion("contains", "dynamic_forward_proxy_cluster", "log"), LOG, True, LOG.stdout.strip()),
        (
            Assertion("matches", r"dynamic_forward_proxy_cluster .* en\.wikipedia\.org", "log"),
            LOG,
            True,
            LOG.stdout.strip(),
        ),
        (Assertion("matches", r"sni_cluster .* en\.wikipedia\.org", "log"), LOG, False, LOG.stdout.strip()),
        (Assertion("notContains", "PassthroughCluster", "log"), LOG, True, "not found"),
    ],
)
def test_assertion(assertion: Assertion, seen: Observed, passed: bool, received: str) -> None:
    assert assertion.check(seen) == (passed, received)


def test_an_empty_log_read_says_so() -> None:
    empty = Observed("")
    assert Assertion("contains", "sni_cluster", "log").check(empty) == (
        False,
        "no log lines since the exec step began",
    )
    assert Assertion("notContains", "wikipedia", "log").check(empty) == (
        True,
        "no log lines since the exec step began",
    )


def test_a_log_regex_matches_within_one_line_not_across_lines() -> None:
    two_lines = Observed("sni_cluster one request\nanother request en.wikipedia.org\n")
    assert Assertion("matches", r"sni_cluster .*en\.wikipedia\.org").check(two_lines)[0] is False


@pytest.mark.parametrize(
    ("stdout", "status"),
    [
        ("HTTP/1.1 301 Moved Permanently\r\nlocation: https://x/\r\n\r\nHTTP/2 200\r\n", 200),
        ("HTTP/2 403\r\n", 403),
        ("301", 301),
        ("body\n200\n", 200),
        ("", None),
        ("2000", None),
    ],
)
def test_http_status_is_the_last_status_line_or_a_final_three_digit_line(
    stdout: str, status: int | None
) -> None:
    assert http_status(stdout) == status


def test_received_text_keeps_the_tail_and_says_how_much_was_cut() -> None:
    text = "\n".join(f"line {n}" for n in range(1, 11)) + "\n" + "x" * 500
    trimmed = trim(text).splitlines()
    assert trimmed[0] == "… (5 earlier lines)"
    assert trimmed[1:-1] == ["line 6", "line 7", "line 8", "line 9", "line 10"]
    assert len(trimmed[-1]) == 220 and trimmed[-1].endswith("…")
    assert trim("  \n") == "(empty)"
