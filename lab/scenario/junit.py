"""JUnit XML: one testsuite per scenario, one testcase per assertion (plus step errors and the leak check)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from lab.scenario.results import ERROR, FAILED, SKIPPED, ScenarioResult


def to_junit(results: list[ScenarioResult]) -> ET.ElementTree:
    root = ET.Element("testsuites", name="lab scenarios")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for result in results:
        counts = {
            "tests": len(result.cases),
            "failures": sum(c.status == FAILED for c in result.cases),
            "errors": sum(c.status == ERROR for c in result.cases),
            "skipped": sum(c.status == SKIPPED for c in result.cases),
        }
        suite = ET.SubElement(
            root,
            "testsuite",
            name=result.scenario.name,
            timestamp=result.started_at,
            time=f"{result.seconds:.3f}",
            **{k: str(v) for k, v in counts.items()},
        )
        for case in result.cases:
            element = ET.SubElement(
                suite,
                "testcase",
                classname=f"scenario.{result.scenario.name}",
                name=case.name,
                time=f"{case.seconds:.3f}",
            )
            if case.status == FAILED:
                ET.SubElement(
                    element, "failure", message=case.expected, type="AssertionError"
                ).text = case.failure_text
            elif case.status == ERROR:
                ET.SubElement(
                    element, "error", message=case.received.splitlines()[0] if case.received else case.name
                ).text = case.failure_text
            elif case.status == SKIPPED:
                ET.SubElement(element, "skipped", message=case.received)
        if result.interrupted:
            ET.SubElement(suite, "system-err").text = "interrupted (Ctrl-C): cleaned up and stopped"
        for key in totals:
            totals[key] += counts[key]
        total_time += result.seconds
    root.attrib.update({k: str(v) for k, v in totals.items()}, time=f"{total_time:.3f}")
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def write_junit(results: list[ScenarioResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    to_junit(results).write(path, encoding="utf-8", xml_declaration=True)
