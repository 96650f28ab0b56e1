"""What the analyzer reports: one `Finding` per problem, about one resource."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]

SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    kind: str
    namespace: str
    name: str
    message: str
    hint: str

    @property
    def resource(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def sort_key(finding: Finding) -> tuple[str, str, str, int, str]:
    return (
        finding.kind,
        finding.namespace,
        finding.name,
        SEVERITY_ORDER[finding.severity],
        finding.code,
    )


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
