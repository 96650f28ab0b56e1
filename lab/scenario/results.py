"""Results of a scenario run: one case per assertion, plus the step errors and the leak check."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lab.scenario.assertions import Assertion
from lab.scenario.model import Scenario

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
LEAK_CHECK = "cleanup: namespaces and Istio resources are as before"


@dataclass
class Case:
    """One line of the report and one JUnit testcase."""

    name: str
    status: str
    seconds: float = 0.0
    expected: str = ""
    received: str = ""

    @property
    def failure_text(self) -> str:
        if self.status == ERROR:
            return self.received
        return f"expected: {self.expected}\nreceived: {self.received}"


@dataclass
class ScenarioResult:
    scenario: Scenario
    cases: list[Case] = field(default_factory=list)
    interrupted: bool = False
    kept: bool = False
    report_dir: Path | None = None
    seconds: float = 0.0
    started_at: str = ""
    bug: Exception | None = None  # the first unexpected error: the CLI raises it after the report

    def record(
        self, step: str, assertion: Assertion, status: str, seconds: float = 0.0, received: str = ""
    ) -> Case:
        case = Case(f"{step}: {assertion.description}", status, seconds, assertion.description, received)
        self.cases.append(case)
        return case

    def error(self, what: str, message: str, seconds: float = 0.0) -> Case:
        case = Case(what, ERROR, seconds, "", message)
        self.cases.append(case)
        return case

    def skip_unrun(self, reason: str) -> None:
        """Assertions never reached are reported as not run, so the count stays one per assertion."""
        done = {c.name for c in self.cases}
        for step, assertion in self.scenario.assertions:
            name = f"{step.name}: {assertion.description}"
            if name not in done:
                self.cases.append(Case(name, SKIPPED, 0.0, assertion.description, reason))

    @property
    def problems(self) -> list[Case]:
        return [c for c in self.cases if c.status in (FAILED, ERROR)]

    @property
    def passed(self) -> bool:
        return not self.interrupted and not self.problems and all(c.status == PASSED for c in self.cases)

    def to_json(self) -> str:
        return json.dumps(
            {
                "scenario": self.scenario.name,
                "started_at": self.started_at,
                "seconds": round(self.seconds, 3),
                "passed": self.passed,
                "interrupted": self.interrupted,
                "kept": self.kept,
                "cases": [c.__dict__ for c in self.cases],
            },
            indent=2,
        )
