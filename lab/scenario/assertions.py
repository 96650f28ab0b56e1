"""Assertions on an exec result or on pod logs, and how a failure is shown (expected vs received)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lab.trace.expect import PathExpect

# Positive checks are retried until they pass; negative ones ("does not contain") are judged once,
# on the output that satisfied the positive ones: absence proves nothing before the evidence exists.
NEGATIVE_KINDS = frozenset({"stdoutNotContains", "notContains"})
EXEC_KINDS = ("exitCode", "httpStatus", "stdoutContains", "stdoutNotContains", "stdoutMatches", "path")
LOG_KINDS = ("contains", "matches", "notContains")
PATTERN_KINDS = frozenset({"stdoutMatches", "matches"})  # regular expressions, checked when loading

# `{node_ip:NAMESPACE/POD}` or `{node_ip:NAMESPACE/SELECTOR}` in a hostLogs expectation: the
# address of the node that pod runs on (status.hostIP), read from the cluster when the check runs,
# so a scenario can say "testpc saw pod1's node" without knowing where pod1 was scheduled.
NODE_IP = re.compile(r"\{node_ip:([a-z0-9]([-a-z0-9]*[a-z0-9])?)/([^}\s]+)\}")
_UNRESOLVED = "0.0.0.0"  # stands in while a pattern is only being compiled
_STATUS_LINE = re.compile(r"^HTTP/[0-9.]+ (\d{3})\b", re.MULTILINE)
_MAX_LINES = 6
_MAX_LINE = 220


@dataclass(frozen=True)
class Observed:
    """What a step saw: an exec result (exit code, stdout, stderr) or a log read (stdout only); for an
    exec step with a `path` expectation also the trace of its request and the gateway pods' labels."""

    stdout: str
    exit_code: int | None = None
    stderr: str = ""
    trace: Any = None  # lab.trace.Trace
    gateway_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    addresses: dict[str, list[str]] = field(default_factory=dict)  # `{node_ip:...}` -> node addresses


@dataclass(frozen=True)
class Assertion:
    kind: str
    value: str | int | PathExpect
    subject: str = "stdout"

    @property
    def negative(self) -> bool:
        return self.kind in NEGATIVE_KINDS

    @property
    def description(self) -> str:
        v = self.value
        return {
            "exitCode": f"exit code is {v}",
            "httpStatus": f"HTTP status is {v}",
            "stdoutContains": f"stdout contains {v!r}",
            "stdoutNotContains": f"stdout does not contain {v!r}",
            "stdoutMatches": f"stdout matches /{v}/",
            "contains": f"{self.subject} contains {v!r}",
            "notContains": f"{self.subject} does not contain {v!r}",
            "matches": f"{self.subject} has a line matching /{v}/",
            "path": f"path is {v}",
        }[self.kind]

    def check(self, seen: Observed) -> tuple[bool, str]:
        """(passed, what was received, trimmed for a person to read)."""
        out = seen.stdout
        if isinstance(self.value, PathExpect):
            return self.value.check(seen.trace, seen.gateway_labels)
        if self.kind == "exitCode":
            received = f"exit code {seen.exit_code}"
            if seen.exit_code != 0 and seen.stderr.strip():
                received += f": {seen.stderr.strip().splitlines()[-1][:_MAX_LINE]}"
            return seen.exit_code == self.value, received
        if self.kind == "httpStatus":
            status = http_status(out)
            return (
                status == self.value,
                f"HTTP status {status}" if status else f"no HTTP status in {trim(out)}",
            )
        refs = node_ip_refs(str(self.value))
        where = "".join(
            f"{{node_ip:{ref}}} is {' or '.join(seen.addresses.get(ref) or ['?'])}; " for ref in refs
        )
        if self.kind in LOG_KINDS and not out.strip():
            return self.kind == "notContains", f"{where}no log lines since the exec step began"
        if any(not seen.addresses.get(ref) for ref in refs):
            return False, f"{where}no running pod there to take a node address from"
        if self.kind in ("stdoutContains", "contains"):
            texts = _alternatives(str(self.value), seen.addresses)
            return any(t in out for t in texts), where + trim(out)
        if self.kind in ("stdoutNotContains", "notContains"):
            texts = _alternatives(str(self.value), seen.addresses)
            hits = [line for line in out.splitlines() if any(t in line for t in texts)]
            return not hits, where + (trim("\n".join(hits)) if hits else "not found")
        pattern = re.compile(with_addresses(str(self.value), seen.addresses))
        if self.kind == "stdoutMatches":
            return pattern.search(out) is not None, trim(out)
        return any(pattern.search(line) for line in out.splitlines()), where + trim(out)


def node_ip_refs(value: str) -> list[str]:
    """The `NAMESPACE/POD-or-SELECTOR` of each `{node_ip:...}` in an expectation, in order, each once."""
    found: list[str] = []
    for match in NODE_IP.finditer(value):
        ref = f"{match[1]}/{match[3]}"
        if ref not in found:
            found.append(ref)
    return found


def with_addresses(pattern: str, addresses: dict[str, list[str]]) -> str:
    """A regular expression with each `{node_ip:...}` replaced by its addresses (any one of them)."""

    def one(match: re.Match[str]) -> str:
        found = addresses.get(f"{match[1]}/{match[3]}") or [_UNRESOLVED]
        return "(?:" + "|".join(map(re.escape, found)) + ")"

    return NODE_IP.sub(one, pattern)


def _alternatives(value: str, addresses: dict[str, list[str]]) -> list[str]:
    """Every plain-text reading of `value`, one per combination of the addresses it names."""
    texts = [value]
    for ref in node_ip_refs(value):
        texts = [t.replace(f"{{node_ip:{ref}}}", a) for t in texts for a in addresses.get(ref, [])]
    return texts


def http_status(stdout: str) -> int | None:
    """The last HTTP status: a `HTTP/1.1 200` line (curl -i / -D -) or a last line of three digits
    (curl -w '%{http_code}')."""
    statuses = _STATUS_LINE.findall(stdout)
    if statuses:
        return int(statuses[-1])
    lines = stdout.strip().splitlines()
    if lines and re.fullmatch(r"\d{3}", lines[-1].strip()):
        return int(lines[-1].strip())
    return None


def trim(text: str) -> str:
    """The tail of `text`: the last lines are where the request of interest shows up."""
    lines = [
        line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 1] + "…" for line in text.strip().splitlines()
    ]
    if not lines:
        return "(empty)"
    if len(lines) <= _MAX_LINES:
        return "\n".join(lines)
    return f"… ({len(lines) - _MAX_LINES} earlier lines)\n" + "\n".join(lines[-_MAX_LINES:])
