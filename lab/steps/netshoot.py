"""netshoot: sidecar injection on `default`, then the client pods, each with its istio-proxy."""

from __future__ import annotations

import shlex
from string import Template
from typing import Any

from lab.errors import LabError, RemoteCommandError
from lab.lab import CLUSTER_NODES
from lab.nodes import Node, in_parallel
from lab.steps.base import Step, UpContext
from lab.template import ROOT

MANIFEST = ROOT / "manifests" / "lab" / "netshoot.yaml"
SELECTOR = "app=netshoot"
PODS = ("pod1", "pod2")


def images(ctx: UpContext) -> tuple[str, ...]:
    """What the client pods run: netshoot, and the demo profile's sidecar (hub docker.io/istio)."""
    return (ctx.spec.netshoot_image, f"docker.io/istio/proxyv2:{ctx.cluster.istio_version}")


def pull_images(ctx: UpContext, wanted: tuple[str, ...]) -> None:
    """Pull the pods' images on every cluster node now, while Istio installs: wherever the
    scheduler puts a pod, it then starts without a pull. Pulling an image already there is a no-op."""
    ctx.note(f"pulling {', '.join(wanted)} on {', '.join(CLUSTER_NODES)}")
    command = " && ".join(f"sudo crictl pull {shlex.quote(image)}" for image in wanted)

    def pull(node: Node) -> None:
        node.run(command, timeout=ctx.settings.ready_timeout)

    in_parallel(ctx.nodes(CLUSTER_NODES), pull)


def _has_sidecar(pod: dict[str, Any]) -> bool:
    return "istio-proxy" in {c["name"] for c in pod.get("spec", {}).get("containers", [])}


def _ready_with_sidecar(pod: dict[str, Any]) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses", [])
    names = {s["name"] for s in statuses}
    return "istio-proxy" in names and all(s.get("ready") for s in statuses)


class Netshoot(Step):
    name = "netshoot"
    title = "Deploying the netshoot client pods"

    def _pods(self, ctx: UpContext) -> list[dict[str, Any]]:
        return ctx.cluster.kubectl_json("get", "pods", "-n", "default", "-l", SELECTOR).get("items", [])

    def _labelled(self, ctx: UpContext) -> bool:
        namespace = ctx.cluster.kubectl_json("get", "namespace", "default")
        return namespace.get("metadata", {}).get("labels", {}).get("istio-injection") == "enabled"

    def done(self, ctx: UpContext) -> bool:
        try:
            pods, labelled = self._pods(ctx), self._labelled(ctx)
        except RemoteCommandError:
            return False
        ctx.seen[self.name] = (pods, labelled)  # what `run` would ask again
        ready = {p["metadata"]["name"] for p in pods if _ready_with_sidecar(p)}
        return labelled and set(PODS) <= ready

    def run(self, ctx: UpContext) -> None:
        # Started with cloud-init (k3s runs on the nodes): the pulls overlap Istio's install.
        pull_images(ctx, images(ctx))
        ctx.wait_for("nodes-ready")
        cluster = ctx.cluster
        pods, labelled = ctx.seen.get(self.name) or (self._pods(ctx), self._labelled(ctx))
        if not labelled:
            cluster.kubectl("label", "namespace", "default", "istio-injection=enabled", "--overwrite")
        # The pods need istiod's sidecar injector: a pod created before it has no sidecar.
        ctx.wait_for("istio")
        # A pod created before the label has no sidecar and never gets one: recreate it.
        for pod in pods:
            if not _has_sidecar(pod):
                ctx.note(f"recreating {pod['metadata']['name']}: it has no istio-proxy sidecar")
                cluster.kubectl("delete", "pod", pod["metadata"]["name"], "-n", "default", "--wait=true")
        manifest = Template(MANIFEST.read_text()).substitute(NETSHOOT_IMAGE=ctx.spec.netshoot_image)
        cluster.kubectl("apply", "-f", "-", stdin=manifest)
        # The sidecar is in the spec from admission on: check it now, not after the wait. Ready
        # then means every container is, istio-proxy included.
        missing = [p["metadata"]["name"] for p in self._pods(ctx) if not _has_sidecar(p)]
        if missing:
            raise LabError(
                f"{', '.join(missing)} created without an istio-proxy sidecar",
                "check that istiod's sidecar injector is running (`invoke kubectl -- get pods -n istio-system`)",
            )
        ctx.note("waiting for the pods to be Ready")
        cluster.wait(
            "pod",
            condition="Ready",
            namespace="default",
            selector=SELECTOR,
            timeout=ctx.settings.ready_timeout,
        )
