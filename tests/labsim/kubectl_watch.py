"""Simulated kubectl, the verbs that look at running things: wait, logs, exec, rollout."""

from __future__ import annotations

import re
import sys
import time
from datetime import datetime

from . import egress, workloads
from .cluster import Cluster, KubeError, State, matches
from .kinds import Kind, iso, key_of
from .kubectl import Args, kind_of, namespace_of, targets

POLL = 0.1  # seconds between looks at the state file; the simulator may poll fast


def duration(text: str, flag: str = "--timeout") -> float:
    """Go durations as kubectl's DurationVar flags take them: `300s`, `5m`, `1m30s`, `500ms`, `0`;
    errors worded as Go's `time.ParseDuration` (go/src/time/format.go) and pflag's
    `invalid argument %q for %q flag: %v` (spf13/pflag flag.go)."""
    if text == "0":
        return 0.0
    parts = re.findall(r"(-?\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        reason = "missing unit in duration" if re.fullmatch(r"-?\d+(\.\d+)?", text) else "invalid duration"
        raise KubeError(f'error: invalid argument "{text}" for "{flag}" flag: time: {reason} "{text}"')
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(number) * scale[unit] for number, unit in parts)


def _find(state: State, kind: Kind, namespace: str, name: str) -> dict | None:
    for obj in state.listing(kind, namespace if kind.namespaced else None):
        if obj["metadata"]["name"] == name:
            return obj
    return None


def _condition_met(obj: dict | None, condition: str) -> bool:
    if condition == "delete":
        return obj is None
    if obj is None:
        return False
    name, _, value = condition.removeprefix("condition=").partition("=")
    value = value or "True"
    return any(
        c.get("type", "").lower() == name.lower() and c.get("status", "").lower() == value.lower()
        for c in obj.get("status", {}).get("conditions", [])
    )


def wait(ctx, cluster: Cluster, args: Args) -> int:
    """kubernetes/kubectl v0.30.5 pkg/cmd/wait/wait.go: default --timeout 30s, `<kind>/<name> condition
    met` per object (the "condition met" print flag), `timed out waiting for the condition on
    <resource>/<name>` (`wait.go` line 610), `no matching resources found` (errNoMatchingResources)."""
    condition = str(args.get("for", ""))
    if condition != "delete" and not condition.startswith("condition="):
        raise KubeError(f'error: unrecognized condition: "{condition}"')
    deadline = time.monotonic() + duration(str(args.get("timeout", "30s")))
    state = cluster.read()
    namespace = namespace_of(args) or ""
    waiting: list[tuple[Kind, str]] = []
    for kind, name in targets(args, args.words[1:], state):
        scope = namespace if kind.namespaced else ""
        if name is not None:
            if _find(state, kind, scope, name) is None and condition != "delete":
                raise KubeError(f'Error from server (NotFound): {kind.resource} "{name}" not found')
            waiting.append((kind, name))
        elif args.get("selector") or args.on("all"):
            waiting += [
                (kind, o["metadata"]["name"])
                for o in state.listing(kind, scope or None)
                if matches(o["metadata"].get("labels") or {}, args.get("selector"))
            ]
        else:
            raise KubeError("error: resource(s) were provided, but no name was specified")
    if not waiting:
        raise KubeError("error: no matching resources found")
    for kind, name in waiting:
        while not _condition_met(_find(cluster.read(), kind, namespace, name), condition):
            if time.monotonic() >= deadline:
                print(f"error: timed out waiting for the condition on {kind.plural}/{name}", file=sys.stderr)
                return 1
            time.sleep(POLL)
        print(f"{kind.qualified}/{name} condition met", flush=True)
    return 0


def _pods_of(state: State, namespace: str, target: str) -> list[dict]:
    """`pod1`, `pod/pod1`, `deployment/istiod` -> pods (a Deployment's, oldest name first)."""
    kind_name, _, name = target.rpartition("/")
    kind = kind_of(kind_name, state) if kind_name else None
    if kind is None or kind.kind == "Pod":
        pod = state.get("Pod", namespace, name)
        if pod is None:
            raise KubeError(f'Error from server (NotFound): pods "{name}" not found')
        return [pod]
    owner = state.get(kind.kind, namespace, name)
    if owner is None:
        raise KubeError(f'Error from server (NotFound): {kind.resource} "{name}" not found')
    return workloads.owned_pods(state, key_of(owner))


def _container(pod: dict, wanted: object, quiet: bool = False) -> str:
    """The container kubectl picks: kubernetes/kubectl v0.30.5 `pkg/cmd/util/podcmd/podcmd.go`
    `FindOrDefaultContainerByName` (exec) and `pkg/polymorphichelpers/logsforobject.go` (logs): the
    `kubectl.kubernetes.io/default-container` annotation when it names a container (silently), else
    the first container, with a note on stderr when the pod has others (init containers count)."""
    spec = pod["spec"]
    names = [c["name"] for c in spec.get("containers", [])]
    if wanted:
        return str(wanted)
    default = (pod["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    if default in names:
        return str(default)
    chosen = names[0]
    others = len(names) > 1 or spec.get("initContainers") or spec.get("ephemeralContainers")
    if others and not quiet:
        every = names + [f"{c['name']} (ephem)" for c in spec.get("ephemeralContainers") or []]
        every += [f"{c['name']} (init)" for c in spec.get("initContainers") or []]
        print(f'Defaulted container "{chosen}" out of: {", ".join(every)}', file=sys.stderr)
    return chosen


def _since(args: Args) -> float | None:
    if args.get("since-time"):
        stamp = str(args.get("since-time")).replace("Z", "+00:00")
        try:
            # kubectl sends sinceTime as a metav1.Time query parameter, formatted RFC 3339 in whole
            # seconds (k8s.io/apimachinery 1.30 pkg/apis/meta/v1/time.go, MarshalQueryParameter):
            # the fraction never reaches the kubelet, which keeps lines at or after that second.
            return float(int(datetime.fromisoformat(stamp).timestamp()))
        except ValueError:
            raise KubeError(
                f'error: invalid argument "{args.get("since-time")}" for "--since-time" flag: parsing time'
            ) from None
    if args.get("since"):
        return time.time() - duration(str(args.get("since")), "--since")
    return None


def _rfc3339_nano(ts: float) -> str:
    """The kubelet's --timestamps stamp: Go's time.RFC3339Nano, trailing zeros of the fraction cut
    (kubernetes 1.30 pkg/kubelet/kuberuntime/logs/logs.go, timeFormatOut)."""
    whole, micros = divmod(round(ts * 1e6), 1_000_000)  # the simulator's clock keeps microseconds
    nanos = f"{micros:06d}000".rstrip("0")
    return iso(whole).replace("Z", f".{nanos}Z" if nanos else "Z")


def logs(ctx, cluster: Cluster, args: Args) -> int:
    """kubernetes/kubectl v0.30.5 pkg/cmd/logs/logs.go: with a selector and no --tail, 10 lines per
    container (`selectorTail`); no pod matched: `No resources found in NS namespace.` on stderr, exit 0;
    a workload with several pods: `Found N pods, using pod/NAME` (polymorphichelpers/logsforobject.go)."""
    state = cluster.read()
    namespace = str(args.get("namespace", "default"))
    selector = args.get("selector")
    words = args.words[1:]
    if selector:
        pods = [
            p for p in state.objects("Pod", namespace) if matches(p["metadata"].get("labels") or {}, selector)
        ]
        if not pods:
            print(f"No resources found in {namespace} namespace.", file=sys.stderr)
            return 0
    elif words:
        pods = _pods_of(state, namespace, words[0])
        if len(pods) > 1:
            print(f"Found {len(pods)} pods, using pod/{pods[0]['metadata']['name']}", file=sys.stderr)
        pods = pods[:1]
        if len(words) > 1 and "container" not in args.flags:
            args.flags["container"] = words[1]
    else:
        raise KubeError("error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.")
    tail = int(str(args.get("tail", "10" if selector else "-1")))
    since = _since(args)
    for pod in pods:
        names = [c["name"] for c in pod["spec"].get("containers", [])]
        chosen = names if args.on("all-containers") else [_container(pod, args.get("container"))]
        for container in chosen:
            if container not in names:
                raise KubeError(
                    f"error: container {container} is not valid for pod {pod['metadata']['name']}"
                )
            lines = [
                (ts, text)
                for ts, text in state.log_lines(namespace, pod["metadata"]["name"], container)
                if since is None or ts >= since
            ]
            if tail >= 0:
                lines = lines[-tail:] if tail else []
            for ts, text in lines:
                prefix = f"[pod/{pod['metadata']['name']}/{container}] " if args.on("prefix") else ""
                stamp = _rfc3339_nano(ts) + " " if args.on("timestamps") else ""
                print(f"{prefix}{stamp}{text}")
    return 0


def exec_(ctx, cluster: Cluster, args: Args) -> int:
    # kubernetes/kubectl v0.30.5 pkg/cmd/exec/exec.go `Complete` then `Validate`: without `--`, 1.30
    # still runs the words after the pod, with a deprecation note (1.31 refuses them)
    words = args.words[1:]
    command = args.command
    if not command and len(words) > 1:
        if not args.on("quiet"):
            print(
                "kubectl exec [POD] [COMMAND] is DEPRECATED and will be removed in a future version. "
                "Use kubectl exec [POD] -- [COMMAND] instead.",
                file=sys.stderr,
            )
        command = words[1:]
    if not words:
        raise KubeError("error: pod, type/name or --filename must be specified")
    if not command:
        raise KubeError("error: you must specify at least one command for the container")
    namespace = str(args.get("namespace", "default"))
    with cluster.edit() as state:
        pod = _pods_of(state, namespace, words[0])[0]
        container = _container(pod, args.get("container"), args.on("quiet"))
        if container not in [c["name"] for c in pod["spec"].get("containers", [])]:
            raise KubeError(f'error: unable to upgrade connection: container not found ("{container}")')
        code, out, err = egress.run_in_pod(state, pod, container, command)
    sys.stdout.write(out)
    sys.stderr.write(err)
    if code:
        # kubernetes/client-go v0.30.5 tools/remotecommand/v4.go builds this exit error; kubectl's
        # pkg/cmd/util/helpers.go `checkErr` prints it as is and exits with the command's code
        print(f"command terminated with exit code {code}", file=sys.stderr)
    return code


def rollout(ctx, cluster: Cluster, args: Args) -> int:
    """`rollout status|restart deployment/NAME`; the messages of kubernetes/kubectl v0.30.5
    pkg/polymorphichelpers/rollout_status.go `DeploymentStatusViewer` (done when Available here)."""
    action = args.words[1] if len(args.words) > 1 else ""
    rest = Args(words=["rollout", *args.words[2:]], flags=args.flags)
    namespace = namespace_of(args) or "default"
    state = cluster.read()
    (kind, name), *_ = targets(rest, rest.words[1:], state)
    if kind.kind != "Deployment" or name is None:
        raise KubeError("error: rollout supports deployment/NAME here")
    if state.get("Deployment", namespace, name) is None:
        raise KubeError(f'Error from server (NotFound): deployments.apps "{name}" not found')
    if action == "restart":
        with cluster.edit() as editing:
            workloads.roll(editing, editing.get("Deployment", namespace, name))
        print(f"deployment.apps/{name} restarted")
        return 0
    if action != "status":
        raise KubeError(f'error: unknown command "{action}" for "kubectl rollout"')
    limit = duration(str(args.get("timeout", "0")))
    deadline = time.monotonic() + (limit or 7 * 24 * 3600)
    announced = False
    kind = kind_of("deployment", state)
    while not _condition_met(_find(cluster.read(), kind, namespace, name), "condition=Available"):
        if not announced:
            print(
                f'Waiting for deployment "{name}" rollout to finish: 0 of 1 updated replicas '
                "are available...",
                flush=True,
            )
            announced = True
        if time.monotonic() >= deadline:
            print("error: timed out waiting for the condition", file=sys.stderr)
            return 1
        time.sleep(POLL)
    print(f'deployment "{name}" successfully rolled out')
    return 0
