"""addons: Kiali, Prometheus, Grafana and Jaeger from the pinned release's samples/addons."""

from __future__ import annotations

import ipaddress

from lab.errors import RemoteCommandError
from lab.steps.base import Step, UpContext
from lab.steps.istio import available


def kiali_node_port(ctx: UpContext) -> int | None:
    return node_port(ctx.cluster.kubectl_json("get", "service", "kiali", "-n", "istio-system"))


def node_port(service: dict) -> int | None:
    if service.get("spec", {}).get("type") != "NodePort":
        return None
    for port in service["spec"].get("ports", []):
        if port.get("nodePort"):
            return int(port["nodePort"])
    return None


def expose_kiali(ctx: UpContext) -> bool:
    """The samples' Kiali has anonymous access: publish its NodePort to one address only."""
    cidr = ctx.lab.state.ssh_cidr
    return cidr is not None and ipaddress.ip_network(cidr).prefixlen == 32


class Addons(Step):
    name = "addons"
    title = "Installing Kiali, Prometheus, Grafana and Jaeger"

    def done(self, ctx: UpContext) -> bool:
        try:
            deployments = ctx.cluster.kubectl_json("get", "deployments", "-n", "istio-system")
            if "kiali" not in available(deployments, ("kiali",)):
                return False
            port = kiali_node_port(ctx)
        except RemoteCommandError:
            return False
        ctx.seen["kiali_node_port"] = port
        return port is not None or not expose_kiali(ctx)

    def record(self, ctx: UpContext) -> None:
        ctx.lab.state.facts["kiali_node_port"] = ctx.seen.get("kiali_node_port")

    def run(self, ctx: UpContext) -> None:
        cluster = ctx.cluster
        cluster.kubectl("apply", "-f", f"{cluster.istio_home}/samples/addons", timeout=300)
        ctx.note("waiting for Kiali to be Available")
        cluster.wait(
            "deployment/kiali",
            condition="Available",
            namespace="istio-system",
            timeout=ctx.settings.ready_timeout,
        )
        if not expose_kiali(ctx):
            ctx.detail(
                f"Kiali: `invoke kiali` (no NodePort: SSH is open to {ctx.lab.state.ssh_cidr}, not one address)"
            )
            return
        # A NodePort, reachable only from the SSH CIDR (security group), besides `invoke kiali`.
        cluster.kubectl(
            "patch", "service", "kiali", "-n", "istio-system", "-p", '{"spec":{"type":"NodePort"}}'
        )
        port = kiali_node_port(ctx)
        ctx.lab.state.facts["kiali_node_port"] = port
        ctx.detail(f"Kiali: http://{ctx.lab.state.nodes['k3s-s'].public_ip}:{port}/ or `invoke kiali`")
