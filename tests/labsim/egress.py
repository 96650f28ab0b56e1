"""Commands run inside pods through `kubectl exec`: curl, answered by the rules in egress.yaml.

A rule says what the request returns and which access-log lines it leaves in which pods; the
`--egress` mode picks the rule list. Rules are data: nothing here knows about Istio.
"""

from __future__ import annotations

import fnmatch
import json
import os
import random
import re
import shlex
import string
import uuid
import zlib
from urllib.parse import urlsplit

import yaml

from . import netpol, webserver
from .cluster import State, matches
from .kinds import iso

CURL_VALUE_FLAGS = {
    "-o",
    "--output",
    "-w",
    "--write-out",
    "-m",
    "--max-time",
    "--connect-timeout",
    "-H",
    "--header",
    "-X",
    "--request",
    "-d",
    "--data",
    "-A",
    "--user-agent",
    "-u",
    "--user",
    "--resolve",
    "--retry",
    "--retry-delay",
    "--cacert",
    "-e",
    "--referer",
    "-x",
    "--proxy",
}
REASONS = {
    200: "OK",
    301: "Moved Permanently",
    403: "Forbidden",
    404: "Not Found",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
PLACEHOLDERS = (
    "host",
    "url",
    "path",
    "scheme",
    "port",
    "method",
    "status",
    "pod",
    "namespace",
    "pod_ip",
    "now",
    "upstream_ip",
    "gateway_ip",
    "client_port",
    "sidecar_port",
    "gateway_port",
    "listener_sni",
    "request_id",
    "duration",
    "bytes",
)


class Curl:
    def __init__(self, argv: list[str]) -> None:
        self.flags: dict[str, str] = {}
        self.switches: set[str] = set()
        self.url = ""
        items = list(argv)
        while items:
            item = items.pop(0)
            if item.startswith("--"):
                name, has_value, value = item.partition("=")
                if name in CURL_VALUE_FLAGS:
                    self.flags[name] = value if has_value else (items.pop(0) if items else "")
                else:
                    self.switches.add(name)
            elif item.startswith("-") and len(item) > 1:
                for index, char in enumerate(item[1:], start=1):
                    if f"-{char}" in CURL_VALUE_FLAGS:
                        rest = item[index + 1 :]
                        self.flags[f"-{char}"] = rest or (items.pop(0) if items else "")
                        break
                    self.switches.add(f"-{char}")
            elif not self.url:
                self.url = item if "://" in item else f"http://{item}"

    def flag(self, *names: str) -> str | None:
        return next((self.flags[n] for n in names if n in self.flags), None)

    def on(self, *names: str) -> bool:
        return any(n in self.switches for n in names)

    @property
    def shows_errors(self) -> bool:
        return not self.on("-s", "--silent") or self.on("-S", "--show-error")


def load_rules(path: str) -> dict:
    with open(path) as file:
        return yaml.safe_load(file)


def present(state: State, need: dict) -> bool:
    """A `requires` / `unless` entry: some object of that kind (namespace, name, contents)."""
    for obj in state.objects(need["kind"], need.get("namespace")):
        if need.get("name") not in (None, obj["metadata"]["name"]):
            continue
        text = json.dumps(state.render(obj), separators=(",", ":"))
        wanted = need.get("contains", [])
        if all(part in text for part in ([wanted] if isinstance(wanted, str) else wanted)):
            return True
    return False


def _first_pod(state: State, namespace: str, selector: str, container: str | None = None) -> dict | None:
    for pod in state.objects("Pod", namespace):
        names = [c["name"] for c in pod["spec"].get("containers", [])]
        if matches(pod["metadata"].get("labels") or {}, selector) and (
            container is None or container in names
        ):
            return pod
    return None


def _ip(pod: dict) -> str:
    return pod["metadata"].get("annotations", {}).get("labsim/pod-ip", "")


def listener_sni(state: State, host: str, port: int) -> str:
    """%REQUESTED_SERVER_NAME% on a sidecar's line for TLS that no route claims (PassthroughCluster,
    BlackHoleCluster). istio/istio 1.23.2 pilot/pkg/networking/core/listener.go builds a
    `0.0.0.0_<port>` outbound listener, with a tls_inspector listener filter, only for ports that
    some service or ServiceEntry declares; without one the connection lands on the virtualOutbound
    listener (listener_builder.go, port 15001), whose passthrough chain reads no SNI, and Envoy
    prints `-`. With one, every TLS connection on that port shows its SNI, not only the entry's host."""
    for entry in state.objects("ServiceEntry", None):
        if any(int(p.get("number", 0)) == port for p in (entry.get("spec") or {}).get("ports") or []):
            return host
    return "-"


def write_out(template: str, status: int, remote_ip: str, exit_code: int) -> tuple[str, str]:
    """curl's --write-out (curl docs, "write-out"): variables filled in; `%{stderr}` sends what follows
    to stderr (curl 7.63.0+). curl writes it even when the transfer failed, with http_code 000."""
    out, err, target = "", "", "out"
    values = {
        "http_code": f"{status:03d}",
        "response_code": f"{status:03d}",
        "remote_ip": remote_ip,
        "exitcode": str(exit_code),
    }
    text = template.replace("\\n", "\n")
    for index, part in enumerate(text.split("%{")):
        if index:
            name, closed, rest = part.partition("}")
            if closed and name in ("stderr", "stdout"):
                target, part = ("err" if name == "stderr" else "out"), rest
            elif closed and name in values:
                part = values[name] + rest
            else:
                part = "%{" + part
        if target == "err":
            err += part
        else:
            out += part
    return out, err


def choose(state: State, rules: list[dict], pod: dict, scheme: str, host: str) -> dict | None:
    has_proxy = any(c["name"] == "istio-proxy" for c in pod["spec"].get("containers", []))
    for rule in rules:
        gateway = rule.get("gateway")
        if (
            fnmatch.fnmatch(host, rule["host"])
            and rule.get("scheme", scheme) == scheme
            and (has_proxy or not rule.get("sidecar"))
            and all(present(state, need) for need in rule.get("requires", []))
            and not any(present(state, need) for need in rule.get("unless", []))
            and (not gateway or _first_pod(state, gateway["namespace"], gateway["selector"]))
        ):
            return rule
    return None


def page(pages: list[dict], host: str) -> str:
    for entry in pages:
        if fnmatch.fnmatch(host, entry["host"]):
            return entry["body"]
    return ""


def fill(template: str, values: dict) -> str:
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    unknown = names - set(PLACEHOLDERS)
    if unknown:
        raise ValueError(f"egress.yaml: unknown placeholder(s) {sorted(unknown)} in {template!r}")
    return template.format_map(values)


def write_logs(state: State, rule: dict, values: dict) -> None:
    for target in rule.get("logs", []):
        namespace = fill(target["namespace"], values)
        if "pod" in target:
            pod = state.get("Pod", namespace, fill(target["pod"], values))
        else:
            pod = _first_pod(state, namespace, target["selector"], target["container"])
        names = [c["name"] for c in (pod or {}).get("spec", {}).get("containers", [])]
        if pod and target["container"] in names:
            state.append_log(
                namespace, pod["metadata"]["name"], target["container"], fill(target["line"], values)
            )


def resolved(request: Curl, host: str, port: int) -> str | None:
    """curl's --resolve HOST:PORT:ADDRESS (curl docs, "--resolve"): connect there, keep Host and SNI."""
    entry = request.flag("--resolve") or ""
    name, _, rest = entry.partition(":")
    wanted_port, _, address = rest.partition(":")
    if name == host and wanted_port == str(port) and address:
        return address.split(",")[0].strip("[]")
    return None


def connect_refused(host: str, port: int) -> str:
    # curl 8 (lib/cf-socket.c, lib/connect.c) on ECONNREFUSED: exit 7 with this message.
    return f"curl: (7) Failed to connect to {host} port {port} after 1 ms: Couldn't connect to server\n"


def mark_upstream_failure(line: str) -> str:
    """A proxy line whose upstream connect failed: RESPONSE_FLAGS UF, nothing sent or received
    (Envoy access-log docs: UF, upstream connection failure)."""
    return re.sub(r'^(\[[^\]]+\] "[^"]*" \d+ )\S+( \S+ \S+ "[^"]*" )\d+ \d+', r"\g<1>UF\g<2>0 0", line)


def upstream_refused(rule: dict, scheme: str, host: str, values: dict) -> dict:
    """The sidecar's upstream connection refused: only the sidecar logs (flag UF); TLS dies in the
    handshake (the tcp_proxy closes the app's connection: curl 35), HTTP gets Envoy's local 503."""
    client = [t for t in rule.get("logs", []) if t.get("pod") == "{pod}"]
    changed = {**rule, "logs": [{**t, "line": mark_upstream_failure(t["line"])} for t in client]}
    if scheme == "https":
        changed.update(
            exit=35, stderr=f"curl: (35) OpenSSL SSL_connect: SSL_ERROR_SYSCALL in connection to {host}:443 "
        )
        return changed
    # Envoy router's local reply for a failed upstream connect (response code details
    # upstream_reset_before_response_started{connection_failure})
    text = "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
    values.update(status=503, bytes=len(text))
    changed.update(stdout=text, status=503)
    return changed


def curl(state: State, pod: dict, argv: list[str]) -> tuple[int, str, str]:
    request = Curl(argv)
    if not request.url:
        return 2, "", "curl: try 'curl --help' or 'curl --manual' for more information\n"
    parts = urlsplit(request.url)
    host, scheme = parts.hostname or "", parts.scheme
    port = parts.port or (443 if scheme == "https" else 80)
    address = resolved(request, host, port)
    if address is None and not netpol.resolves(state, pod):
        # a NetworkPolicy that keeps the pod from CoreDNS: the lookup itself fails
        error = f"curl: (6) Could not resolve host: {host}\n"
        return 6, "", error if request.shows_errors else ""
    catalogue = load_rules(state.config.egress_file)
    rule = choose(state, catalogue["modes"][state.config.egress], pod, scheme, host)
    if rule is None:
        error = f"curl: (6) Could not resolve host: {host}\n"
        return 6, "", error if request.shows_errors else ""
    body = rule.get("stdout", page(catalogue.get("pages", []), host))
    status = int(rule.get("status", 200))
    gateway = rule.get("gateway")
    gateway_pod = _first_pod(state, gateway["namespace"], gateway["selector"]) if gateway else None
    values = {
        "host": host,
        "url": request.url,
        "path": parts.path + (f"?{parts.query}" if parts.query else "") or "/",
        "scheme": scheme,
        "port": port,
        "status": status,
        "method": request.flag("-X", "--request") or ("HEAD" if request.on("-I", "--head") else "GET"),
        "pod": pod["metadata"]["name"],
        "namespace": pod["metadata"]["namespace"],
        "pod_ip": _ip(pod),
        "now": iso(state.now, fraction=True),
        "upstream_ip": f"203.0.113.{zlib.crc32(host.encode()) % 250 + 1}",
        "gateway_ip": _ip(gateway_pod) if gateway_pod else "-",
        # Three sockets, three ephemeral ports (Linux ip_local_port_range 32768-60999): the app's
        # connection to the sidecar, the sidecar's to its upstream (the gateway's downstream), and
        # the gateway's to the external host. Envoy logs the first as DOWNSTREAM_REMOTE_ADDRESS and
        # the second as UPSTREAM_LOCAL_ADDRESS, which is how hops join.
        "client_port": random.randint(32768, 60999),
        "sidecar_port": random.randint(32768, 60999),
        "gateway_port": random.randint(32768, 60999),
        "listener_sni": listener_sni(state, host, port),
        "request_id": str(uuid.uuid4()),
        "duration": random.randint(20, 200),
        "bytes": len(body.encode()),
    }
    if address:
        values["upstream_ip"] = address
    # The pod's own connection goes to the gateway when the rule routes there, else to the
    # upstream: a NetworkPolicy judges that one (netpol.py), and testpc's web server answers it.
    has_proxy = any(c["name"] == "istio-proxy" for c in pod["spec"].get("containers", []))
    via = gateway_pod if gateway_pod is not None and has_proxy else None
    where = netpol.Destination(port, pod=via) if via else netpol.Destination(port, ip=values["upstream_ip"])
    web = scheme == "http" and port == webserver.PORT and values["upstream_ip"] == webserver.address(state)
    # (A gateway whose own upstream is refused is not simulated: no scenario needs it.)
    refused = not netpol.allows(state, pod, where) or (web and not via and not webserver.installed(state))
    if refused and not has_proxy:
        out, err = write_out(request.flag("-w", "--write-out") or "", 0, values["upstream_ip"], 7)
        return 7, out, (connect_refused(host, port) if request.shows_errors else "") + err
    if refused:
        rule = upstream_refused(rule, scheme, host, values)
    elif web and webserver.installed(state):
        source = webserver.node_address(state, via or pod)
        agent = request.flag("-A", "--user-agent") or "curl/8.7.1"
        status, page_text = webserver.serve(state, source, str(values["method"]), str(values["path"]), agent)
        values.update(status=status, bytes=len(page_text.encode()))
        rule = {**rule, "stdout": page_text, "status": status}
    body = rule.get("stdout", body)
    write_logs(state, rule, values)
    status = int(rule.get("status", status))
    code = int(rule.get("exit", 0))
    template = request.flag("-w", "--write-out") or ""
    # The IP curl connected to: the sidecar's iptables redirect accepts every outbound connection,
    # so it is the address DNS gave, even when the mesh then refuses the stream.
    connected = values["upstream_ip"]
    if code:
        error = fill(rule.get("stderr", ""), values)
        out, err = write_out(template, 0, connected, code)
        return code, out, (error + "\n" if error and request.shows_errors else "") + err
    if status >= 400 and request.on("-f", "--fail"):
        error = f"curl: (22) The requested URL returned error: {status}\n"
        out, err = write_out(template, status, connected, 22)
        return 22, out, (error if request.shows_errors else "") + err
    if request.on("-I", "--head"):
        protocol = "HTTP/2" if scheme == "https" else "HTTP/1.1"
        reason = "" if scheme == "https" else " " + REASONS.get(status, "")
        out = f"{protocol} {status}{reason}\r\ncontent-type: text/html; charset=UTF-8\r\n\r\n"
    elif request.flag("-o", "--output"):
        out = ""
    else:
        out = body
    extra, err = write_out(template, status, connected, 0)
    return 0, out + extra, err


def run_in_pod(state: State, pod: dict, container: str, command: list[str]) -> tuple[int, str, str]:
    if len(command) >= 3 and os.path.basename(command[0]) in ("sh", "bash") and command[1] == "-c":
        command = shlex.split(command[2])
    program = os.path.basename(command[0]) if command else ""
    if program == "curl":
        return curl(state, pod, command[1:])
    if program == "true":
        return 0, "", ""
    if program == "echo":
        return 0, " ".join(command[1:]) + "\n", ""
    if program == "hostname":
        return 0, pod["metadata"]["name"] + "\n", ""
    return (
        126,
        "",
        (
            f"OCI runtime exec failed: exec failed: unable to start container process: "
            f'exec: "{command[0] if command else ""}": executable file not found in '
            "$PATH: unknown\n"
        ),
    )
