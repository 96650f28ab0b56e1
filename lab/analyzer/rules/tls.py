"""Checks that sidecars and gateways agree on Istio mTLS between them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lab.analyzer.findings import Finding
from lab.analyzer.hosts import fqdn
from lab.analyzer.inventory import Port, Service
from lab.analyzer.model import MESH, Config
from lab.analyzer.resources import Resource
from lab.analyzer.rulebook import Rule, rule
from lab.analyzer.rules.gateways import servers

ISTIO_MUTUAL = "ISTIO_MUTUAL"


@dataclass(frozen=True)
class Caller:
    """Sidecar traffic to a gateway Service port, and the TLS mode its DestinationRule sets."""

    gateway: Resource
    server_port: int
    server_mode: str | None
    service: Service
    port: Port
    subset: str | None
    mode: str | None
    rule: Resource | None  # the DestinationRule that decided `mode`

    @property
    def target(self) -> str:
        subset = f" subset {self.subset}" if self.subset else ""
        return f"{self.service.host}:{self.port.number}{subset}"


def callers(config: Config) -> Iterator[Caller]:
    """Every mesh route into a Service port that lands on a Gateway server."""
    for gateway in config.of_kind("Gateway"):
        for _, server in servers(gateway):
            number = server["port"]["number"]
            mode = (server.get("tls") or {}).get("mode")
            for workload in config.gateway_workloads(gateway):
                for service in config.services_of(workload):
                    for port in service.ports:
                        if number in (port.number, port.target_port):
                            yield from _routes_into(config, gateway, number, mode, service, port)


def _routes_into(
    config: Config, gateway: Resource, number: int, mode: str | None, service: Service, port: Port
) -> Iterator[Caller]:
    seen = set()
    for route in config.routes():
        if MESH not in route.gateways:
            continue
        for dest in route.destinations:
            dest_port = (dest.get("port") or {}).get("number")
            if fqdn(str(dest.get("host")), route.vs.namespace) != service.host:
                continue
            if dest_port not in (None, port.number):
                continue
            subset = dest.get("subset")
            if subset in seen:
                continue
            seen.add(subset)
            tls, dr = config.tls_mode(service.host, subset, port.number)
            yield Caller(gateway, number, mode, service, port, subset, tls, dr)


@rule("LAB0301", "error", "Gateway expects ISTIO_MUTUAL but callers do not send it")
def callers_without_mtls(config: Config, found: Rule) -> Iterator[Finding]:
    for c in callers(config):
        if c.server_mode != ISTIO_MUTUAL or c.mode == ISTIO_MUTUAL:
            continue
        gateway = f"{c.gateway.ref} port {c.server_port}"
        if c.rule is None or c.mode is None:
            message = (
                f"{gateway} expects Istio mTLS, but no DestinationRule sets tls.mode ISTIO_MUTUAL "
                f"for {c.target}: sidecars rely on auto mTLS, which gateway pods may not accept"
            )
            yield found(c.rule or c.gateway, message, _hint(c), "warning")
        else:
            message = (
                f"{gateway} expects Istio mTLS, but this rule sends {c.mode} to {c.target}: "
                "the handshake fails"
            )
            yield found(c.rule, message, _hint(c))


@rule("LAB0302", "error", "callers send ISTIO_MUTUAL to a Gateway server that does not expect it")
def mtls_to_plain_server(config: Config, found: Rule) -> Iterator[Finding]:
    for c in callers(config):
        if c.mode != ISTIO_MUTUAL or c.server_mode == ISTIO_MUTUAL or c.rule is None:
            continue
        message = (
            f"sends Istio mTLS to {c.target}, but {c.gateway.ref} port {c.server_port} is "
            f"{c.server_mode or 'plain'}: the gateway cannot read the traffic (it sees the SNI "
            f"outbound_.{c.port.number}_.{c.subset or ''}_.{c.service.host})"
        )
        hint = "set the server's tls.mode to ISTIO_MUTUAL, or drop ISTIO_MUTUAL from this rule"
        yield found(c.rule, message, hint)


def _hint(c: Caller) -> str:
    subset = f" (subset {c.subset})" if c.subset else ""
    return f"set trafficPolicy.tls.mode: ISTIO_MUTUAL for {c.service.host}{subset}"
