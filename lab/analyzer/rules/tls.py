"""Checks that sidecars and gateways agree on Istio mTLS between them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lab.analyzer.findings import Finding
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
    """Mesh routes into a gateway Service port, each paired with one Gateway server there.

    Many Gateways may put servers on the same workload port (they share its listener): a route
    is paired with the first server that disagrees with it, else with the first server. Gateways
    are taken by selector group, so the cost is servers plus routes, not their product.
    """
    landing: dict[tuple[str, str, int], tuple[Service, Port, list[_Server]]] = {}
    for group in config.gateway_groups():
        by_port: dict[int, list[_Server]] = {}
        for gateway in group:
            for _, server in servers(gateway):
                number = server["port"]["number"]
                by_port.setdefault(number, []).append((gateway, number, (server.get("tls") or {}).get("mode")))
        workloads = config.gateway_workloads(group[0])
        for number, found in by_port.items():
            for workload in workloads:
                for service in config.services_of(workload):
                    for port in service.ports:
                        if number in (port.number, port.target_port):
                            key = (service.namespace, service.name, port.number)
                            landing.setdefault(key, (service, port, []))[2].extend(_first_two(found))
    for service, port, found in landing.values():
        mutual = next((g for g in found if g[2] == ISTIO_MUTUAL), None)
        other = next((g for g in found if g[2] != ISTIO_MUTUAL), None)
        for subset, mode, dr in _routes_into(config, service, port):
            chosen = (other or mutual) if mode == ISTIO_MUTUAL else (mutual or other)
            assert chosen is not None
            gateway, number, server_mode = chosen
            yield Caller(gateway, number, server_mode, service, port, subset, mode, dr)


_Server = tuple[Resource, int, "str | None"]


def _first_two(found: list[_Server]) -> list[_Server]:
    """The first ISTIO_MUTUAL server and the first other one: all `callers` needs of a group."""
    mutual = next((g for g in found if g[2] == ISTIO_MUTUAL), None)
    other = next((g for g in found if g[2] != ISTIO_MUTUAL), None)
    return [g for g in (mutual, other) if g is not None]


def _routes_into(
    config: Config, service: Service, port: Port
) -> Iterator[tuple[str | None, str | None, Resource | None]]:
    seen = set()
    for route, dest in config.routes_to(service.host):
        if MESH not in route.gateways:
            continue
        if (dest.get("port") or {}).get("number") not in (None, port.number):
            continue
        subset = dest.get("subset")
        if subset in seen:
            continue
        seen.add(subset)
        tls, dr = config.tls_mode(service.host, subset, port.number)
        yield subset, tls, dr


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
