"""A trace for a person (text) or a program (`--format json`)."""

from __future__ import annotations

import json
from typing import Any

from lab.trace.join import Hop
from lab.trace.verdict import Trace


def hop_json(hop: Hop) -> dict[str, Any]:
    line = hop.line
    return {
        "proxy": hop.proxy,
        "role": hop.role,
        "cluster": line.upstream_cluster,
        "upstream_host": line.upstream_host,
        "sni": line.sni,
        "authority": line.authority,
        "response_code": line.response_code,
        "response_flags": sorted(line.response_flags),
        "line": line.raw,
    }


def trace_json(trace: Trace) -> str:
    return json.dumps(
        {
            "to": trace.target.url,
            "from": trace.client,
            "verdict": trace.verdict,
            "sentence": trace.sentence,
            "gateways": trace.gateways,
            "hops": [hop_json(h) for h in trace.hops],
            "predicted": trace.predicted,
            "notes": trace.notes,
            "unknown_lines": [{"proxy": p, "line": raw} for p, raw in trace.unknown],
        },
        indent=2,
    )


def trace_text(trace: Trace, raw: bool = True) -> list[str]:
    lines = [f"trace {trace.target.url} from {trace.client}"]
    for number, hop in enumerate(trace.hops, start=1):
        line = hop.line
        if hop.role == "client sidecar":
            where = f"the app connected to {line.downstream_local_address or '-'}"
        else:
            where = f"listener {line.downstream_local_address or '-'}"
        if line.route_name:
            where += f", route {line.route_name}"
        facts = [
            f"cluster {line.upstream_cluster or '-'}",
            f"upstream {line.upstream_host or '-'}",
            f"sni {line.sni}" if line.sni else "",
            f"authority {line.authority}" if line.authority else "",
            f"code {line.response_code}",
            f"flags {','.join(sorted(line.response_flags))}" if line.response_flags else "",
        ]
        lines.append(f"  {number}. {hop.role} {hop.proxy} ({where})")
        lines.append("     " + ", ".join(f for f in facts if f))
        if raw:
            lines.append(f"     {line.raw}")
    for note in trace.notes:
        lines.append(f"  note: {note}")
    for proxy, text in trace.unknown[:5]:
        lines.append(f"  unknown line format in {proxy} (not read): {text[:160]}")
    if len(trace.unknown) > 5:
        lines.append(f"  … {len(trace.unknown) - 5} more lines in formats this tool does not know")
    lines.append(f"verdict: {trace.verdict}: {trace.sentence}")
    if trace.predicted and trace.predicted != trace.verdict:
        lines.append(f"predicted {trace.predicted} ({trace.predicted_by}), observed {trace.verdict}")
    elif trace.predicted:
        lines.append(f"{trace.predicted_by} predicted the same: {trace.predicted}")
    return lines
