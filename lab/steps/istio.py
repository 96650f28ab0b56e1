"""istioctl and Istio: the pinned istioctl on k3s-s, then the demo profile, then wait for it."""

from __future__ import annotations

import json

from lab.cluster import condition
from lab.errors import RemoteCommandError
from lab.steps.base import Step, UpContext

RELEASES = "https://github.com/istio/istio/releases/download"
ISTIO_DEPLOYMENTS = ("istiod", "istio-ingressgateway", "istio-egressgateway")


class Istioctl(Step):
    name = "istioctl"
    title = "Installing istioctl"

    def done(self, ctx: UpContext) -> bool:
        cluster = ctx.cluster
        result = ctx.node("k3s-s").run(
            f"test -x {cluster.istioctl_path} && {cluster.istioctl_path} version --remote=false -o json",
            check=False,
        )
        if not result.ok:
            return False
        try:
            return json.loads(result.stdout)["clientVersion"]["version"] == cluster.istio_version
        except (ValueError, KeyError, TypeError):
            return False

    def run(self, ctx: UpContext) -> None:
        version = ctx.cluster.istio_version
        # The release tarball carries istioctl and samples/addons, both pinned to one version;
        # its published .sha256 is checked before anything is unpacked. It is fetched into a
        # private folder of its own: a fixed name in /tmp could be anyone's file (or symlink).
        name = f"istio-{version}-linux-$arch.tar.gz"
        url = f"{RELEASES}/{version}/{name}"
        script = (
            'case "$(uname -m)" in aarch64|arm64) arch=arm64 ;; *) arch=amd64 ;; esac && '
            'download=$(mktemp -d) && cd "$download" && '
            f"curl -fsSL --retry 5 -o {name} {url} && "
            f"curl -fsSL --retry 5 -o {name}.sha256 {url}.sha256 && "
            f"sha256sum -c {name}.sha256 && "
            f"tar -xzf {name} -C $HOME && "
            'cd / && rm -rf "$download"'
        )
        ctx.node("k3s-s").run(script, timeout=600)
        ctx.detail(f"istioctl {version} in {ctx.cluster.istio_home}")


def available(deployments: dict, names: tuple[str, ...]) -> set[str]:
    """The named deployments whose Available condition is True."""
    items = deployments.get("items", [])
    return {
        i["metadata"]["name"] for i in items if i["metadata"]["name"] in names and condition(i, "Available")
    }


class Istio(Step):
    name = "istio"
    title = "Installing Istio (demo profile)"

    def _deployments(self, ctx: UpContext) -> dict:
        return ctx.cluster.kubectl_json("get", "deployments", "-n", "istio-system")

    def done(self, ctx: UpContext) -> bool:
        try:
            ctx.seen[self.name] = deployments = self._deployments(ctx)
        except RemoteCommandError:
            return False
        return available(deployments, ISTIO_DEPLOYMENTS) == set(ISTIO_DEPLOYMENTS)

    def run(self, ctx: UpContext) -> None:
        # Started with cloud-init so that its check overlaps the nodes' wait; installs only on Ready nodes.
        ctx.wait_for("nodes-ready")
        cluster = ctx.cluster
        deployments = ctx.seen.get(self.name) or self._deployments(ctx)
        present = {i["metadata"]["name"] for i in deployments.get("items", [])}
        if not set(ISTIO_DEPLOYMENTS) <= present:
            # The demo profile keeps access logs on stdout: the scenarios' evidence depends on it.
            ctx.note("istioctl install --set profile=demo")
            # istioctl blocks until the components are ready: its own wait, bounded by ours.
            timeout = int(ctx.settings.ready_timeout)
            cluster.istioctl(
                "install",
                "--set",
                "profile=demo",
                "-y",
                f"--readiness-timeout={timeout}s",
                timeout=timeout + 120,
            )
            return  # it waited for them itself
        ctx.note("waiting for istiod and both gateways to be Available")
        cluster.wait(
            *(f"deployment/{d}" for d in ISTIO_DEPLOYMENTS),
            condition="Available",
            namespace="istio-system",
            timeout=ctx.settings.ready_timeout,
        )
