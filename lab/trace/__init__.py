"""`invoke trace`: which way one request really went, read from the proxies' access logs.

Public API: `parse_line` (one log line), `ProxyLog` (one proxy's log), `Target` (the request),
`trace` (the hops and the verdict), `Trace` (the result), `trace_text` / `trace_json` (output),
`read_folder` (the `--logs` layout).
"""

from lab.trace.join import Hop, Target
from lab.trace.logline import AccessLine, UnknownLine, parse_line
from lab.trace.offline import read_folder
from lab.trace.proxylog import ProxyLog
from lab.trace.render import trace_json, trace_text
from lab.trace.verdict import Trace, trace

__all__ = [
    "AccessLine",
    "Hop",
    "ProxyLog",
    "Target",
    "Trace",
    "UnknownLine",
    "parse_line",
    "read_folder",
    "trace",
    "trace_json",
    "trace_text",
]
