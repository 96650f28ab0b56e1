"""`invoke trace --logs DIR`: saved logs instead of a cluster.

DIR holds one file per proxy, `NAMESPACE.POD.log` (split at the first dot: pod names may hold dots,
namespaces may not), each what `kubectl logs POD -n NAMESPACE -c istio-proxy` printed. The client
is the `--from` pod; every other file is read as a gateway proxy's log.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from lab.errors import LabError
from lab.trace.join import Target
from lab.trace.logline import parse_time
from lab.trace.proxylog import CLIENT, GATEWAY, ProxyLog

SUFFIX = ".log"
REQUEST_FILE = "request.json"


def proxy_name(path: Path) -> str | None:
    """NAMESPACE/POD of a `NAMESPACE.POD.log` file; None for any other file."""
    if not path.name.endswith(SUFFIX):
        return None
    namespace, dot, pod = path.name[: -len(SUFFIX)].partition(".")
    return f"{namespace}/{pod}" if dot and namespace and pod else None


def log_file(folder: Path, proxy: str) -> Path:
    namespace, _, pod = proxy.partition("/")
    return folder / f"{namespace}.{pod}{SUFFIX}"


def read_folder(folder: Path, client: str) -> tuple[ProxyLog, list[ProxyLog]]:
    if not folder.is_dir():
        raise LabError(f"{folder}: no such folder", "give the folder that holds NAMESPACE.POD.log files")
    files = {name: path for path in sorted(folder.iterdir()) if (name := proxy_name(path))}
    if client not in files:
        found = ", ".join(files) or "no NAMESPACE.POD.log file"
        raise LabError(
            f"{folder}: no log of the client {client} ({log_file(folder, client).name})",
            f"found: {found}; name the client with --from NAMESPACE/POD",
        )
    logs = {name: path.read_text(errors="replace") for name, path in files.items()}
    gateways = [ProxyLog.read(name, GATEWAY, text) for name, text in logs.items() if name != client]
    return ProxyLog.read(client, CLIENT, logs[client]), gateways


def write_folder(folder: Path, logs: list[ProxyLog], target: Target | None = None) -> None:
    """Save what was read, in the layout `--logs` reads back, with the request it was read for
    (REQUEST_FILE: the URL, the IP curl connected to and the start), so that a line without SNI can
    still be linked offline."""
    folder.mkdir(parents=True, exist_ok=True)
    for log in logs:
        log_file(folder, log.proxy).write_text(log.text)
    if target is not None:
        request = {
            "to": target.url,
            "from": logs[0].proxy if logs else None,
            "remote_ip": target.remote_ip,
            "since": target.since.isoformat() if target.since else None,
        }
        (folder / REQUEST_FILE).write_text(json.dumps(request, indent=2) + "\n")


def saved_target(folder: Path, target: Target, client: str) -> Target:
    """`target` completed from the folder's REQUEST_FILE when it was saved for the same request
    (same host, same client); the flags given win."""
    try:
        saved = json.loads((folder / REQUEST_FILE).read_text())
    except (OSError, ValueError):
        return target
    if not isinstance(saved, dict) or saved.get("from") != client:
        return target
    try:
        same = Target.parse(str(saved.get("to"))).host == target.host
    except LabError:
        return target
    if not same:
        return target
    since = parse_time(str(saved.get("since") or "").replace("+00:00", "Z"))
    return replace(target, remote_ip=target.remote_ip or saved.get("remote_ip"), since=target.since or since)
