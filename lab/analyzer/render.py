"""Output: findings as a table grouped by resource or as JSON; paths as text or Graphviz."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from itertools import groupby

from rich.console import Console
from rich.table import Table
from rich.text import Text

from lab.analyzer.findings import Finding
from lab.analyzer.path import Path

WIDTH = 100
_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def findings_json(findings: list[Finding]) -> str:
    return json.dumps([f.as_dict() for f in findings], indent=2)


def summary(findings: list[Finding]) -> str:
    if not findings:
        return "no findings"
    counts = Counter(f.severity for f in findings)
    parts = [
        f"{counts[s]} {s}{'s' if counts[s] != 1 and s != 'info' else ''}"
        for s in ("error", "warning", "info")
        if counts[s]
    ]
    resources = len({f.resource for f in findings})
    return f"{', '.join(parts)} in {resources} resource{'s' if resources != 1 else ''}"


def findings_text(findings: list[Finding]) -> str:
    """Plain text, readable in a pipe or a log: a heading per resource, a block per finding."""
    lines: list[str] = []
    for resource, group in groupby(findings, key=lambda f: f.resource):
        lines.append(resource)
        for f in group:
            head = f"  {f.severity:<8} {f.code:<8} "
            indent = " " * len(head)
            lines += _wrap(f.message, WIDTH, initial_indent=head, subsequent_indent=indent)
            lines += _wrap(f"fix: {f.hint}", WIDTH, initial_indent=indent, subsequent_indent=indent + "     ")
        lines.append("")
    lines.append(summary(findings))
    return "\n".join(lines)


def findings_table(findings: list[Finding], console: Console) -> None:
    """The same as findings_text for a terminal: colours, and wrapped to its width."""
    for resource, group in groupby(findings, key=lambda f: f.resource):
        console.print(Text(resource, style="bold"))
        table = Table(box=None, show_header=False, padding=(0, 1, 0, 2), expand=True)
        table.add_column("severity", width=8, no_wrap=True)
        table.add_column("code", width=8, no_wrap=True)
        table.add_column("message", ratio=3)
        table.add_column("fix", ratio=2)
        for f in group:
            severity = Text(f.severity, style=_STYLE[f.severity])
            # Text, not str: messages quote YAML lists ([proxy, router]), which rich would read as markup.
            table.add_row(severity, f.code, Text(f.message), Text(f"fix: {f.hint}", style="dim"))
        console.print(table)
    console.print(summary(findings))


def path_text(path: Path) -> str:
    request = path.request
    lines = [f"{request.url} from {path.source} (mesh outboundTrafficPolicy {path.policy})", ""]
    for number, hop in enumerate(path.hops, start=1):
        lines.append(f"{number}. {hop.proxy}  {hop.where}")
        for step in hop.steps:
            head = f"   {step.what:<14}"
            lines += _wrap(step.value, WIDTH, initial_indent=head, subsequent_indent=" " * len(head))
            lines += _wrap(
                f"by {step.decided_by}: {step.why}",
                WIDTH,
                initial_indent=" " * len(head),
                subsequent_indent=" " * (len(head) + 3),
            )
    lines += ["", f"result: {path.outcome}", f"verdict: {path.verdict}"]
    return "\n".join(lines)


def path_dot(path: Path) -> str:
    """The path as a Graphviz digraph: a box per hop listing its steps, edges named by cluster."""
    out = [
        "digraph path {",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica", fontsize=10];',
        f'  label="{_escape(path.request.url)} from {_escape(path.source)}"; labelloc=t;',
    ]
    for number, hop in enumerate(path.hops, start=1):
        rows = [f"{hop.proxy}", hop.where] + [f"{s.what}: {s.value}  [{s.decided_by}]" for s in hop.steps]
        label = "".join(_escape(r) + "\\l" for r in rows)
        out.append(f'  hop{number} [label="{label}"];')
    for number, hop in enumerate(path.hops[:-1], start=1):
        clusters = [s.value for s in hop.steps if s.what == "cluster"]
        edge = f' [label="{_escape(clusters[-1])}"]' if clusters else ""
        out.append(f"  hop{number} -> hop{number + 1}{edge};")
    color = "darkgreen" if path.reached else "red"
    label = _escape(path.outcome) + "\\n" + _escape(f"verdict: {path.verdict}")  # DOT's line break
    out.append(f'  result [shape=note, color={color}, label="{label}"];')
    if path.hops:
        out.append(f"  hop{len(path.hops)} -> result [style=dashed];")
    out.append("}")
    return "\n".join(out)


def _wrap(text: str, width: int, **indents: str) -> list[str]:
    # Resource names are full of hyphens: never break a line inside one.
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False, **indents)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
