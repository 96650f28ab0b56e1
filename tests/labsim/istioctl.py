"""Simulated istioctl (reached through the release tarball's bin/istioctl wrapper).

Behaviour read from istio/istio at tag 1.23.2: exit codes from `istioctl/cmd/sysexits.go`
(`GetExitCode`: 64 for an unknown command, 1 for any other error; cobra prints `Error: ...`);
`install` from `operator/cmd/mesh/install.go` and `operator/pkg/util/progress/progress.go`;
`analyze` from `istioctl/pkg/analyze/analyze.go`.
"""

from __future__ import annotations

import json
import os
import sys
import time

import yaml

from . import istio_install
from .cluster import Cluster, State
from .config import SERVER
from .kubectl_watch import duration

# progress.go `{{ green "✔" }} %s installed %s`, names from operator/pkg/name/name.go
# `UserFacingComponentName`
CLI_NAMES = {
    "istiod": "Istiod",
    "istio-egressgateway": "Egress gateways",
    "istio-ingressgateway": "Ingress gateways",
}
COMPONENT_LINES = {
    "istiod": "✔ Istiod installed 🧠",
    "istio-egressgateway": "✔ Egress gateways installed 🛫",
    "istio-ingressgateway": "✔ Ingress gateways installed 🛬",
}
EXIT_INCORRECT_USAGE = 64  # sysexits.go ExitIncorrectUsage


class IstioError(Exception):
    pass


def _options(args: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    words, options = [], {}
    items = list(args)
    while items:
        item = items.pop(0)
        if item.startswith("-") and item not in ("-y", "-A", "--skip-confirmation", "--all-namespaces"):
            name, has_value, value = item.partition("=")
            options.setdefault(name, []).append(value if has_value else (items.pop(0) if items else ""))
        elif item.startswith("-"):
            options.setdefault(item, []).append("true")
        else:
            words.append(item)
    return words, options


def _value(text: str) -> object:
    return yaml.safe_load(text) if text else text


def version(ctx, cluster: Cluster, words: list[str], options: dict) -> int:
    client = {
        "version": ctx.istio_version,
        "revision": "1.23.2-simulated",
        "golang_version": "go1.22.7",
        "status": "Clean",
        "tag": ctx.istio_version,
    }
    remote = options.get("--remote", ["true"])[-1] != "false"
    body: dict = {"clientVersion": client}
    istio = cluster.read().data.get("istio") if remote and ctx.node == SERVER else None
    if istio:
        body["meshVersion"] = [{"Component": "pilot", "Info": {"version": istio["version"]}}]
    output = (options.get("-o") or options.get("--output") or [""])[-1]
    if output == "json":
        print(json.dumps(body, indent=2))
    elif output == "short":
        print(ctx.istio_version)
    else:
        print(f"client version: {ctx.istio_version}")
        if istio:
            print(f"control plane version: {istio['version']}")
    return 0


def _profile_and_mesh(options: dict) -> tuple[str, dict]:
    """The profile and the meshConfig values of `--set`/`-s`, as install and manifest generate read them."""
    settings = dict(s.split("=", 1) for s in options.get("--set", []) + options.get("-s", []))
    profile = settings.pop("profile", "default")
    if profile not in istio_install.PROFILES:
        raise IstioError(f'Error: failed to generate manifest: profile "{profile}" not found')
    mesh = {
        k.removeprefix("meshConfig."): _value(v) for k, v in settings.items() if k.startswith("meshConfig.")
    }
    return profile, mesh


def install(ctx, cluster: Cluster, words: list[str], options: dict) -> int:
    profile, mesh = _profile_and_mesh(options)
    if "--skip-confirmation" not in options and "-y" not in options:
        # install.go: the prompt names the enabled components (`humanReadableJoin`); `Confirm`
        # reads a line from stdin, anything but y/yes (or nothing) cancels with exit 1
        parts = ["Istio core", "Istiod"] + [
            CLI_NAMES[f"istio-{g}gateway"] for g in istio_install.PROFILES[profile]
        ]
        joined = " and ".join(parts) if len(parts) == 2 else ", ".join(parts[:-1]) + ", and " + parts[-1]
        print(
            f'This will install the Istio {ctx.istio_version} "{profile}" profile (with '
            f"components: {joined}) into the cluster. Proceed? (y/N) ",
            end="",
            flush=True,
        )
        answer = (ctx.read_stdin().splitlines() or [""])[0]
        if answer.strip().upper() not in ("Y", "YES"):
            print("Cancelled.")
            return 1
    timeout_text = (options.get("--readiness-timeout") or [""])[-1]
    limit = (
        duration(timeout_text, "--readiness-timeout")
        if timeout_text
        else ctx.config.istioctl_readiness_timeout
    )
    with cluster.edit() as state:
        components = istio_install.install(state, ctx.istio_version, profile, mesh)
    print("✔ Istio core installed ⛵️", flush=True)
    deadline = time.monotonic() + limit
    for name in components:
        while not _available(cluster.read(), name):
            if time.monotonic() >= deadline:
                # helmreconciler/wait.go: `resources not ready after %v: %v` and one line per object
                container = "discovery" if name == "istiod" else "istio-proxy"
                print(
                    f"✘ {CLI_NAMES[name]} encountered an error: failed to "
                    f"wait for resource: resources not ready after {timeout_text or '5m0s'}: "
                    f"context deadline exceeded\n  Deployment/istio-system/{name} (containers "
                    f"with unready status: [{container}])"
                )
                print("Error: failed to install manifests: errors occurred during operation", file=sys.stderr)
                return 1
            time.sleep(0.1)
        print(COMPONENT_LINES[name], flush=True)
    print("✔ Installation complete\nMade this installation the default for cluster-wide operations.")
    return 0


def _available(state: State, name: str) -> bool:
    dep = state.get("Deployment", istio_install.NS, name)
    if dep is None:
        return False
    conditions = state.render(dep)["status"]["conditions"]
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


def manifest(ctx, cluster: Cluster, words: list[str], options: dict) -> int:
    """`istioctl manifest generate`: the objects `install` would apply, as YAML documents on stdout,
    without touching the cluster (istio/istio 1.23.2 operator/cmd/mesh/manifest-generate.go)."""
    if words[1:2] != ["generate"]:
        raise IstioError(f'Error: unknown command "{" ".join(words[1:2])}" for "istioctl manifest"')
    profile, mesh = _profile_and_mesh(options)
    objects = [obj for _, obj in istio_install.manifest(ctx.istio_version, profile, mesh)]
    print("\n---\n".join(yaml.safe_dump(obj, sort_keys=False) for obj in objects), end="")
    return 0


def uninstall(ctx, cluster: Cluster, words: list[str], options: dict) -> int:
    with cluster.edit() as state:
        istio_install.uninstall(state)
    print("✔ Uninstall complete")
    return 0


def _pod(state: State, target: str, options: dict) -> dict:
    name, _, namespace = target.partition(".")
    namespace = namespace or (options.get("-n") or options.get("--namespace") or ["default"])[-1]
    pod = state.get("Pod", namespace, name)
    if pod is None:
        raise IstioError(f'Error: pods "{name}" not found')
    if "istio-proxy" not in [c["name"] for c in pod["spec"].get("containers", [])]:
        raise IstioError(
            f"Error: failed to execute command on proxy: container istio-proxy is not valid for pod {name}"
        )
    return pod


def _clusters(state: State) -> list[str]:
    names = [
        "BlackHoleCluster",
        "InboundPassthroughCluster",
        "PassthroughCluster",
        "agent",
        "prometheus_stats",
        "sds-grpc",
        "xds-grpc",
    ]
    for svc in state.objects("Service"):
        host = f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local"
        names += [f"outbound|{p['port']}||{host}" for p in svc["spec"].get("ports", [])]
    for entry in state.objects("ServiceEntry"):
        for host in entry.get("spec", {}).get("hosts", []):
            names += [f"outbound|{p.get('number')}||{host}" for p in entry["spec"].get("ports", [])]
    return names


def proxy_config(ctx, cluster: Cluster, words: list[str], options: dict) -> int:
    if len(words) < 3:
        raise IstioError("Error: requires a pod name: istioctl proxy-config TYPE POD[.NAMESPACE]")
    what, target = words[1], words[2]
    state = cluster.read()
    _pod(state, target, options)
    if what == "clusters":
        body = [
            {"name": n, "type": "EDS" if n.startswith("outbound") else "STATIC"} for n in _clusters(state)
        ]
    elif what == "endpoints":
        body = [
            {
                "name": n,
                "addedViaApi": True,
                "hostStatuses": [
                    {
                        "address": {"socketAddress": {"address": "10.42.0.1", "portValue": 8080}},
                        "healthStatus": {"edsHealthStatus": "HEALTHY"},
                    }
                ],
            }
            for n in _clusters(state)
            if n.startswith("outbound")
        ]
    elif what == "listeners":
        body = [
            {"name": name, "address": {"socketAddress": {"address": "0.0.0.0", "portValue": port}}}
            for name, port in (
                ("virtualOutbound", 15001),
                ("virtualInbound", 15006),
                ("0.0.0.0_443", 443),
                ("0.0.0.0_80", 80),
            )
        ]
    elif what in ("routes", "secret", "all", "bootstrap"):
        body = []
    else:
        raise IstioError(f'Error: unknown command "{what}" for "istioctl proxy-config"')
    if (options.get("-o") or options.get("--output") or [""])[-1] == "json":
        print(json.dumps(body, indent=2))
    else:
        for entry in body:
            print(entry["name"])
    return 0


def analyze(ctx, cluster: Cluster, words: list[str], options: dict) -> int:
    """No findings: the formatted messages on stdout (`[]` as JSON, an empty line as text) and the
    success note on stderr (analyze.go `fmt.Fprintln(cmd.OutOrStdout(), output)`, then
    `fmt.Fprintf(cmd.ErrOrStderr(), "\u2714 No validation issues found when analyzing %s.\n", ...)`)."""
    print("[]" if (options.get("-o") or options.get("--output") or [""])[-1] == "json" else "")
    if "-A" in options or "--all-namespaces" in options:
        target = "all namespaces"
    else:
        target = "namespace: " + (options.get("-n") or options.get("--namespace") or ["default"])[-1]
    print(f"✔ No validation issues found when analyzing {target}.", file=sys.stderr)
    return 0


def proxy_status(ctx, cluster: Cluster, words: list[str], options: dict) -> int:
    state = cluster.read()
    print("NAME   CLUSTER   CDS   LDS   EDS   RDS   ECDS   ISTIOD   VERSION")
    istiod = next(
        (
            p["metadata"]["name"]
            for p in state.objects("Pod", "istio-system")
            if p["metadata"]["name"].startswith("istiod-")
        ),
        "-",
    )
    for pod in state.objects("Pod"):
        if "istio-proxy" in [c["name"] for c in pod["spec"].get("containers", [])]:
            name = f"{pod['metadata']['name']}.{pod['metadata']['namespace']}"
            print(
                f"{name}   Kubernetes   SYNCED (5s)   SYNCED (5s)   SYNCED (5s)   SYNCED (5s)"
                f"   IGNORED   {istiod}   {ctx.istio_version}"
            )
    return 0


COMMANDS = {
    "version": version,
    "install": install,
    "uninstall": uninstall,
    "manifest": manifest,
    "proxy-config": proxy_config,
    "pc": proxy_config,
    "analyze": analyze,
    "proxy-status": proxy_status,
    "ps": proxy_status,
}


def main(ctx, args: list[str]) -> int:
    ctx.istio_version = os.environ.get("LABSIM_ISTIO_VERSION", "unknown")
    words, options = _options(args)
    command = COMMANDS.get(words[0] if words else "")
    if command is None:
        print(f'Error: unknown command "{words[0] if words else ""}" for "istioctl"', file=sys.stderr)
        return EXIT_INCORRECT_USAGE
    remote_free = command is version and options.get("--remote", [""])[-1] == "false"
    if ctx.node != SERVER and not remote_free:
        print(
            'Error: Get "https://127.0.0.1:6443/version": dial tcp 127.0.0.1:6443: connect: '
            "connection refused",
            file=sys.stderr,
        )
        return 1
    try:
        return command(ctx, Cluster(ctx.layout, ctx.config), words, options)
    except IstioError as error:
        print(str(error), file=sys.stderr)
        return 1
