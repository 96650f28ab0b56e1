"""netshoot: sidecar injection on `default`, then the client pods, each with its istio-proxy."""

from __future__ import annotations

from string import Template
from typing import Any

from lab.errors import LabError, RemoteCommandError
from lab.steps.base import Step, UpContext
from lab.template import ROOT

MANIFEST = ROOT / "manifests" / "lab" / "netshoot.yaml"
SELECTOR = "app=netshoot"
PODS = ("pod1", "pod2")


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
        cluster = ctx.cluster
        pods, labelled = ctx.seen.get(self.name) or (self._pods(ctx), self._labelled(ctx))
        if not labelled:
            cluster.kubectl("label", "namespace", "default", "istio-injection=enabled", "--overwrite")
        # A pod created before the label has no sidecar and never gets one: recreate it.
        for pod in pods:
            names = {c["name"] for c in pod.get("spec", {}).get("containers", [])}
            if "istio-proxy" not in names:
                ctx.note(f"recreating {pod['metadata']['name']}: it has no istio-proxy sidecar")
                cluster.kubectl("delete", "pod", pod["metadata"]["name"], "-n", "default", "--wait=true")
        manifest = Template(MANIFEST.read_text()).substitute(NETSHOOT_IMAGE=ctx.spec.netshoot_image)
        cluster.kubectl("apply", "-f", "-", stdin=manifest)
        ctx.note("waiting for the pods to be Ready")
        cluster.wait(
            "pod",
            condition="Ready",
            namespace="default",
            selector=SELECTOR,
            timeout=ctx.settings.ready_timeout,
        )
        missing = [p["metadata"]["name"] for p in self._pods(ctx) if not _ready_with_sidecar(p)]
        if missing:
            raise LabError(
                f"{', '.join(missing)} Ready but without a ready istio-proxy sidecar",
                "check that istiod's sidecar injector is running (`invoke kubectl -- get pods -n istio-system`)",
            )
