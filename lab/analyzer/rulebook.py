"""Rules as small units: a code, a severity, a title, and a check that yields findings.

Every code the analyzer can report is registered here, including the ones the loader reports
(unparseable YAML, binary files), so that docs/analyzer-codes.md has one source of truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from lab.analyzer.findings import Finding, Severity

if TYPE_CHECKING:
    from lab.analyzer.model import Config


class Located(Protocol):
    kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class Rule:
    code: str
    severity: Severity
    title: str
    check: Callable[[Config, Rule], Iterable[Finding]] | None = None

    def __call__(self, where: Located, message: str, hint: str, severity: Severity | None = None) -> Finding:
        """A finding of this rule about `where` (a resource, or anything with kind/namespace/name)."""
        return Finding(
            code=self.code,
            severity=severity or self.severity,
            kind=where.kind,
            namespace=where.namespace,
            name=where.name,
            message=message,
            hint=hint,
        )


RULES: dict[str, Rule] = {}


def _add(rule: Rule) -> Rule:
    if rule.code in RULES:
        raise ValueError(f"analyzer code {rule.code} registered twice")
    RULES[rule.code] = rule
    return rule


def rule(
    code: str, severity: Severity, title: str
) -> Callable[[Callable[[Config, Rule], Iterable[Finding]]], Rule]:
    """Register a check. The check receives the model and its own Rule, which builds findings."""

    def register(check: Callable[[Config, Rule], Iterable[Finding]]) -> Rule:
        return _add(Rule(code, severity, title, check))

    return register


def input_rule(code: str, severity: Severity, title: str) -> Rule:
    """Register a code that the loader or the document checks report themselves."""
    return _add(Rule(code, severity, title))
