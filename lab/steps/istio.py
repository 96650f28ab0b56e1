"""istioctl and Istio: the pinned istioctl on k3s-s, then the demo profile, then wait for it."""

from __future__ import annotations

import json
from typing import Any

import yaml

from lab.cluster import Cluster, condition
from lab.errors import LabError, RemoteCommandError
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


NAMESPACE = "istio-system"
PROFILE = "profile=demo"
# The installed objects `up` owns and checks: what makes istiod and both gateways work.
OWNED_KINDS = ("ServiceAccount", "Service", "Deployment", "ConfigMap")
OWNED_CONFIGMAPS = ("istio",)  # the mesh config


def expected_objects(cluster: Cluster) -> list[dict[str, Any]]:
    """What the install produces, from istioctl itself (`manifest generate`), for the owned objects."""
    rendered = cluster.istioctl("manifest", "generate", "--set", PROFILE, timeout=120).stdout
    try:
        docs = [d for d in yaml.safe_load_all(rendered) if isinstance(d, dict)]
    except yaml.YAMLError as error:
        raise LabError(f"`istioctl manifest generate` printed invalid YAML: {str(error).splitlines()[0]}") from None
    accounts = {
        d["spec"]["template"]["spec"].get("serviceAccountName")
        for d in docs
        if d.get("kind") == "Deployment" and d["metadata"].get("name") in ISTIO_DEPLOYMENTS
    }
    wanted = {"Deployment": set(ISTIO_DEPLOYMENTS), "Service": set(ISTIO_DEPLOYMENTS)}
    wanted |= {"ServiceAccount": accounts, "ConfigMap": set(OWNED_CONFIGMAPS)}
    return [
        d
        for d in docs
        if d["metadata"].get("name") in wanted.get(d.get("kind", ""), ())
        and d["metadata"].get("namespace", NAMESPACE) == NAMESPACE
    ]


def drift(cluster: Cluster) -> list[str]:
    """Each owned object that is missing or differs from what the install produces, by name."""
    live = cluster.kubectl_json("get", ",".join(k.lower() + "s" for k in OWNED_KINDS), "-n", NAMESPACE)
    by_key = {(i.get("kind"), i["metadata"]["name"]): i for i in live.get("items", [])}
    found = []
    for wanted in expected_objects(cluster):
        kind, name = wanted["kind"], wanted["metadata"]["name"]
        have = by_key.get((kind, name))
        if have is None:
            found.append(f"{kind} {NAMESPACE}/{name} is missing")
            continue
        where = _difference(_essentials(wanted), _essentials(have))
        if where is not None:
            found.append(f"{kind} {NAMESPACE}/{name} differs from the install at {where}")
    return found


def _essentials(obj: dict[str, Any]) -> dict[str, Any]:
    """The fields the install sets that make the component work (not what the API server defaults or
    normalises, such as resource quantities): labels, the Service's ports, selector and type, the
    Deployment's selector, pod labels, service account and containers; the mesh config as data."""
    spec = obj.get("spec") or {}
    facts: dict[str, Any] = {"labels": (obj.get("metadata") or {}).get("labels") or {}}
    if obj.get("kind") == "Service":
        facts |= {k: spec[k] for k in ("ports", "selector", "type") if k in spec}
    elif obj.get("kind") == "Deployment":
        template = spec.get("template") or {}
        pod = template.get("spec") or {}
        facts |= {
            "selector": spec.get("selector"),
            "pod labels": (template.get("metadata") or {}).get("labels") or {},
            "serviceAccountName": pod.get("serviceAccountName"),
            "containers": [
                {k: c[k] for k in ("name", "image", "args", "ports") if k in c} for c in pod.get("containers", [])
            ],
        }
    elif obj.get("kind") == "ConfigMap":
        data = obj.get("data") or {}
        facts["mesh"] = _yaml(data.get("mesh", ""))
    return facts


def _yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _difference(wanted: Any, have: Any, where: str = "") -> str | None:
    """The first place where `have` lacks or changes what `wanted` says (extra fields are fine,
    except in the mesh config, which is compared whole)."""
    if isinstance(wanted, dict) and isinstance(have, dict):
        for key, value in wanted.items():
            here = f"{where}.{key}" if where else key
            if key not in have:
                return here
            if key == "mesh":
                if have[key] != value:
                    return here
                continue
            found = _difference(value, have[key], here)
            if found is not None:
                return found
        return None
    if isinstance(wanted, list) and isinstance(have, list):
        if len(wanted) != len(have):
            return where
        for index, (one, other) in enumerate(zip(wanted, have, strict=True)):
            found = _difference(one, other, f"{where}[{index}]")
            if found is not None:
                return found
        return None
    return None if wanted == have else where


class Istio(Step):
    name = "istio"
    title = "Installing Istio (demo profile)"

    def _deployments(self, ctx: UpContext) -> dict:
        return ctx.cluster.kubectl_json("get", "deployments", "-n", NAMESPACE)

    def done(self, ctx: UpContext) -> bool:
        try:
            ctx.seen[self.name] = deployments = self._deployments(ctx)
            if available(deployments, ISTIO_DEPLOYMENTS) != set(ISTIO_DEPLOYMENTS):
                return False
            ctx.seen["istio-drift"] = found = drift(ctx.cluster)
        except RemoteCommandError:
            return False
        return not found

    def run(self, ctx: UpContext) -> None:
        # Started with cloud-init so that its check overlaps the nodes' wait; installs only on Ready nodes.
        ctx.wait_for("nodes-ready")
        cluster = ctx.cluster
        deployments = ctx.seen.get(self.name) or self._deployments(ctx)
        present = {i["metadata"]["name"] for i in deployments.get("items", [])}
        found: list[str] = []
        if set(ISTIO_DEPLOYMENTS) <= present:  # installed before: is it still what the install produces?
            found = ctx.seen["istio-drift"] if "istio-drift" in ctx.seen else drift(cluster)
        for line in found:
            ctx.detail(f"drift: {line}")
        if found or not set(ISTIO_DEPLOYMENTS) <= present:
            install(ctx, "repairing: istioctl install --set profile=demo" if found else None)
            if not found:
                return  # a first install waited for the components itself
        ctx.note("waiting for istiod and both gateways to be Available")
        cluster.wait(
            *(f"deployment/{d}" for d in ISTIO_DEPLOYMENTS),
            condition="Available",
            namespace=NAMESPACE,
            timeout=ctx.settings.ready_timeout,
        )
        if found:
            left = drift(cluster)
            if left:
                raise LabError(
                    f"the install did not repair: {'; '.join(left)}",
                    "see `invoke kubectl -- get all -n istio-system`; `invoke reset` or `invoke down` then `up`",
                )
            ctx.detail(f"repaired {len(found)} object(s) by re-running the install")


def install(ctx: UpContext, note: str | None = None) -> None:
    """`istioctl install` of the demo profile: it applies every object it renders (server-side,
    forcing ownership), so a re-run also puts drifted fields back."""
    # The demo profile keeps access logs on stdout: the scenarios' evidence depends on it.
    ctx.note(note or "istioctl install --set profile=demo")
    # istioctl blocks until the components are ready: its own wait, bounded by ours.
    timeout = int(ctx.settings.ready_timeout)
    ctx.cluster.istioctl(
        "install",
        "--set",
        PROFILE,
        "-y",
        f"--readiness-timeout={timeout}s",
        timeout=timeout + 120,
    )
