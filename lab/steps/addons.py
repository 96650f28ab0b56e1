"""addons: Kiali, Prometheus, Grafana and Jaeger from the pinned release's samples/addons.

Applied file by file: the release's folder also holds loki.yaml (a StatefulSet and three
Services), which the lab does not promise and a t3.medium node does not need.
"""

from __future__ import annotations

import ipaddress

from lab.cluster import condition
from lab.errors import RemoteCommandError
from lab.steps.base import Step, UpContext
from lab.steps.istio import available
from lab.waiting import wait_until

# samples/addons/<name>.yaml, each with a Deployment of the same name in istio-system.
ADDONS = ("kiali", "prometheus", "grafana", "jaeger")
ADDON_TITLES = "Kiali, Prometheus, Grafana and Jaeger"
NAMESPACE = "istio-system"
# The 1.23.2 Kiali Deployment (replicas 1, maxUnavailable 1) is Available before its pod runs:
# only the pod's Ready condition says Kiali answers.
KIALI_PODS = "app.kubernetes.io/name=kiali"


def kiali_node_port(ctx: UpContext) -> int | None:
    return node_port(ctx.cluster.kubectl_json("get", "service", "kiali", "-n", NAMESPACE))


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


def kiali_ready(pods: dict) -> bool:
    return any(condition(pod, "Ready") for pod in pods.get("items", []))


def addon_files(ctx: UpContext) -> list[str]:
    return [f"{ctx.cluster.istio_home}/samples/addons/{name}.yaml" for name in ADDONS]


class Addons(Step):
    name = "addons"
    title = f"Installing {ADDON_TITLES}"

    def done(self, ctx: UpContext) -> bool:
        try:
            # one read of the three kinds: a second `up` asks this on a ready lab
            items = ctx.cluster.kubectl_json("get", "deployments,pods,services", "-n", NAMESPACE).get(
                "items", []
            )
        except RemoteCommandError:
            return False
        of = lambda kind: [i for i in items if i.get("kind") == kind]  # noqa: E731
        if available({"items": of("Deployment")}, ADDONS) != set(ADDONS):
            return False
        kiali = [
            p for p in of("Pod") if p["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "kiali"
        ]
        service = next((s for s in of("Service") if s["metadata"]["name"] == "kiali"), None)
        if not kiali_ready({"items": kiali}) or service is None:
            return False
        port = node_port(service)
        ctx.seen["kiali_node_port"] = port  # written by `record`: done checks only read
        return port is not None or not expose_kiali(ctx)

    def record(self, ctx: UpContext) -> None:
        ctx.lab.state.facts["kiali_node_port"] = ctx.seen.get("kiali_node_port")

    def run(self, ctx: UpContext) -> None:
        # istioctl install creates istio-system first: apply then, not after Istio is ready
        # (nothing in the add-ons needs istiod), and let the pods start while Istio's do.
        self.await_namespace(ctx)
        self.apply(ctx)
        self.wait(ctx)

    def await_namespace(self, ctx: UpContext) -> None:
        def exists() -> bool | None:
            ctx.check_not_failed("istio")
            found = ctx.cluster.kubectl("get", "namespace", NAMESPACE, "-o", "name", check=False)
            return True if found.ok else None

        if exists():
            return
        assert ctx.handle is not None
        with ctx.handle.blocked_on(f"the {NAMESPACE} namespace (step 'istio' creates it)"):
            wait_until(
                exists,
                timeout=ctx.settings.ready_timeout,
                what=f"namespace {NAMESPACE}",
                interval=0.5,
                hint="see the istio step's output",
            )

    def apply(self, ctx: UpContext) -> None:
        files = [arg for path in addon_files(ctx) for arg in ("-f", path)]
        ctx.cluster.kubectl("apply", *files, timeout=300)
        ctx.detail(f"applied samples/addons/{{{','.join(ADDONS)}}}.yaml (not loki.yaml)")

    def wait(self, ctx: UpContext) -> None:
        cluster = ctx.cluster
        ctx.note("waiting for the Kiali pod to be Ready")
        cluster.wait(
            "pod",
            condition="Ready",
            namespace=NAMESPACE,
            selector=KIALI_PODS,
            timeout=ctx.settings.ready_timeout,
        )
        ctx.note("waiting for Prometheus, Grafana and Jaeger to be Available")
        cluster.wait(
            *(f"deployment/{name}" for name in ADDONS if name != "kiali"),
            condition="Available",
            namespace=NAMESPACE,
            timeout=ctx.settings.ready_timeout,
        )
        if not expose_kiali(ctx):
            ctx.detail(
                f"Kiali: `invoke kiali` (no NodePort: SSH is open to {ctx.lab.state.ssh_cidr}, not one address)"
            )
            return
        # A NodePort, reachable only from the SSH CIDR (security group), besides `invoke kiali`.
        cluster.kubectl("patch", "service", "kiali", "-n", NAMESPACE, "-p", '{"spec":{"type":"NodePort"}}')
        port = kiali_node_port(ctx)
        ctx.lab.state.facts["kiali_node_port"] = port
        ctx.detail(f"Kiali: http://{ctx.lab.state.nodes['k3s-s'].public_ip}:{port}/ or `invoke kiali`")
