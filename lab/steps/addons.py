"""addons: Kiali, Prometheus, Grafana and Jaeger from the pinned release's samples/addons."""

from __future__ import annotations

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


class Addons(Step):
    name = "addons"
    title = "Installing Kiali, Prometheus, Grafana and Jaeger"

    def done(self, ctx: UpContext) -> bool:
        try:
            deployments = ctx.cluster.kubectl_json("get", "deployments", "-n", "istio-system")
            port = kiali_node_port(ctx) if "kiali" in available(deployments, ("kiali",)) else None
        except RemoteCommandError:
            return False
        if port:
            ctx.lab.state.facts["kiali_node_port"] = port
        return port is not None

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
        # A NodePort, reachable only from the SSH CIDR (security group), besides `invoke kiali`.
        cluster.kubectl(
            "patch", "service", "kiali", "-n", "istio-system", "-p", '{"spec":{"type":"NodePort"}}'
        )
        port = kiali_node_port(ctx)
        ctx.lab.state.facts["kiali_node_port"] = port
        ctx.detail(f"Kiali: http://{ctx.lab.state.nodes['k3s-s'].public_ip}:{port}/ or `invoke kiali`")
