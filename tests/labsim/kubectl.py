"""Simulated kubectl on k3s-s: flags, get, apply, delete, label, patch (see kubectl_watch for
wait, logs, exec and rollout).

Imitates kubectl 1.30 (k3s v1.30 ships it): messages and exit codes read from kubernetes/kubectl
v0.30.5 (`pkg/cmd/...`, errors printed by `pkg/cmd/util/helpers.go` `checkErr` with an `error: `
prefix, or `Error from server (Reason): ` for API errors, exit 1) and kubernetes/cli-runtime v0.30.5
(`pkg/resource`: files, namespaces, mappings). Flag errors are spf13/pflag's (`unknown flag: --x`,
`unknown shorthand flag: 'x' in -x`, `flag needs an argument: -n`).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import api
from .cluster import Cluster, KubeError, State
from .config import SERVER
from .kinds import Kind, by_name
from .node_tools import k3s_missing
from .printers import emit

VALUE_FLAGS = {
    "-n": "namespace",
    "--namespace": "namespace",
    "-o": "output",
    "--output": "output",
    "-l": "selector",
    "--selector": "selector",
    "-f": "filename",
    "--filename": "filename",
    "-c": "container",
    "--container": "container",
    "-p": "patch",
    "--patch": "patch",
    "--type": "type",
    "--timeout": "timeout",
    "--for": "for",
    "--tail": "tail",
    "--since-time": "since-time",
    "--since": "since",
    "--kubeconfig": "kubeconfig",
    "--context": "context",
    "--request-timeout": "request-timeout",
    "--field-manager": "field-manager",
    "--grace-period": "grace-period",
    "--max-log-requests": "max-log-requests",
    "--field-selector": "field-selector",
    "--cascade": "cascade",
    "--validate": "validate",
}
BOOL_FLAGS = {
    "-A": "all-namespaces",
    "--all-namespaces": "all-namespaces",
    "--overwrite": "overwrite",
    "--ignore-not-found": "ignore-not-found",
    "--wait": "wait",
    "-i": "stdin",
    "--stdin": "stdin",
    "-t": "tty",
    "--tty": "tty",
    "-q": "quiet",
    "--quiet": "quiet",
    "--all": "all",
    "--all-containers": "all-containers",
    "--prefix": "prefix",
    "--timestamps": "timestamps",
    "--server-side": "server-side",
    "--force-conflicts": "force-conflicts",
    "--force": "force",
    "--now": "now",
    "--show-labels": "show-labels",
    "--no-headers": "no-headers",
    "-R": "recursive",
    "--recursive": "recursive",
    "--client": "client",
}
# kubectl's `checkErr` for a refused connection (pkg/cmd/util/helpers.go, `IsConnectionRefused`
# branch of `StandardErrorMessage`); k3s's kubeconfig points at https://127.0.0.1:6443
REFUSED = "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"
# kubectl on an agent: the agents have no /etc/rancher/k3s/k3s.yaml (only the server writes it, mode
# 644 from the lab's `--write-kubeconfig-mode 644`). k3s's kubectl (k3s-io/k3s pkg/kubectl/main.go
# `Main`) sets KUBECONFIG only when that file exists; client-go v0.30.5 tools/clientcmd/loader.go skips
# a missing KUBECONFIG file (its warning is klog V(1)), so kubectl falls back to localhost:8080.
NO_KUBECONFIG = (
    "The connection to the server localhost:8080 was refused - did you specify the right host or port?"
)


@dataclass
class Args:
    words: list[str] = field(default_factory=list)
    flags: dict = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)  # after `--`

    def get(self, name: str, default: object = None) -> object:
        return self.flags.get(name, default)

    def on(self, name: str) -> bool:
        return self.flags.get(name, "false") not in ("false", "0")


def parse(argv: list[str]) -> Args:
    args = Args()
    items = list(argv)
    while items:
        item = items.pop(0)
        if item == "--":
            args.command = items
            break
        if not item.startswith("-") or item == "-":
            args.words.append(item)
            continue
        name, has_value, value = item.partition("=")
        if not has_value and not item.startswith("--") and len(item) > 2:
            if item[:2] in VALUE_FLAGS:  # -nfoo
                name, has_value, value = item[:2], "=", item[2:]
            elif all(f"-{c}" in BOOL_FLAGS for c in item[1:]):  # -it
                items[:0] = [f"-{c}" for c in item[1:]]
                continue
        if name == "--dry-run":
            args.flags["dry-run"] = value if has_value else "client"
        elif name in BOOL_FLAGS:
            args.flags[BOOL_FLAGS[name]] = value if has_value else "true"
        elif name in VALUE_FLAGS:
            if not has_value:
                if not items:
                    raise KubeError(f"error: flag needs an argument: {name}")
                value = items.pop(0)
            if VALUE_FLAGS[name] == "filename":
                args.files.append(value)
            else:
                args.flags[VALUE_FLAGS[name]] = value
        elif name.startswith("--"):
            raise KubeError(f"error: unknown flag: {name}")
        else:
            raise KubeError(f"error: unknown shorthand flag: '{name[1]}' in {item}")
    return args


def kind_of(name: str, state: State) -> Kind:
    kind = by_name(name.split("/")[0])
    if kind is None or not state.served(kind):
        raise KubeError(f'error: the server doesn\'t have a resource type "{name.split("/")[0]}"')
    return kind


def namespace_of(args: Args) -> str | None:
    """None means all namespaces."""
    return None if args.on("all-namespaces") else str(args.get("namespace", "default"))


def targets(args: Args, words: list[str], state: State) -> list[tuple[Kind, str | None]]:
    """`pods,events`, `pods NAME...`, `deployment/x deployment/y` -> (kind, name or None)."""
    if not words:
        raise KubeError("error: You must specify the type of resource to get.")
    if "/" in words[0]:
        return [(kind_of(w, state), w.split("/", 1)[1]) for w in words]
    kinds = [kind_of(k, state) for k in words[0].split(",") if k]
    if len(words) == 1:
        return [(k, None) for k in kinds]
    return [(k, name) for k in kinds for name in words[1:]]


# -- documents ---------------------------------------------------------------------------------
def documents(ctx, args: Args) -> list[tuple[dict, str]]:
    """Every object in the -f sources, with the source name kubectl reports. cli-runtime v0.30.5
    pkg/resource/builder.go: `-f -` is `STDIN`; a folder is read one level deep (no `-R`), only
    `.json`, `.yaml`, `.yml` files, in lexical order; a missing path is `the path %q does not exist`;
    no `-f` is `must specify one of -f and -k` (`RequireFilenameOrKustomize`)."""
    if not args.files:
        raise KubeError("error: must specify one of -f and -k")
    found = []
    for source in args.files:
        if source == "-":
            found += [(d, "STDIN") for d in _load(ctx.read_stdin(), "STDIN")]
            continue
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
        elif path.exists():
            files = [path]
        else:
            raise KubeError(f'error: the path "{source}" does not exist')
        for file in files:
            found += [(d, str(file)) for d in _load(file.read_text(), str(file))]
    return found


def _load(text: str, source: str) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as error:
        raise KubeError(f"error: error parsing {source}: {error}") from None
    expanded = []
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise KubeError(
                f'error: error validating "{source}": error validating data: '
                "[apiVersion not set, kind not set]"
            )
        expanded += (doc.get("items") or []) if doc["kind"] == "List" else [doc]
    return expanded


# -- verbs -------------------------------------------------------------------------------------
def get(ctx, cluster: Cluster, args: Args) -> int:
    """kubectl v0.30.5 pkg/cmd/get/get.go: missing names are `Error from server (NotFound): <resource>
    "<name>" not found` on stderr after what was found, exit 1 unless --ignore-not-found."""
    state = cluster.read()
    if any(k.kind == "Node" for k, _ in targets(args, args.words[1:], state)):
        with cluster.edit() as counting:  # fault `kubectl_transient`
            refused = counting.data["transient_left"] > 0
            counting.data["transient_left"] -= refused
        if refused:
            raise KubeError(REFUSED)
    namespace = namespace_of(args)
    found, missing = [], []
    wanted = targets(args, args.words[1:], state)
    for kind, name in wanted:
        scope = namespace if kind.namespaced else None
        if name is None:
            objects = state.listing(kind, scope)
            selector = args.get("selector")
            found += [o for o in objects if _selected(o, selector)]
            continue
        if kind.namespaced and scope is None:
            raise KubeError("error: a resource cannot be retrieved by name across all namespaces")
        match = [o for o in state.listing(kind, scope) if o["metadata"]["name"] == name]
        found += match
        if not match:
            missing.append(f'Error from server (NotFound): {kind.resource} "{name}" not found')
    single = len(wanted) == 1 and wanted[0][1] is not None
    emit(found, str(args.get("output", "")), single, namespace, args.on("no-headers"))
    if missing and not args.on("ignore-not-found"):
        print("\n".join(missing), file=sys.stderr)
        return 1
    return 0


def _selected(obj: dict, selector: object) -> bool:
    from .cluster import matches

    return matches(obj["metadata"].get("labels") or {}, selector)  # type: ignore[arg-type]


def apply(ctx, cluster: Cluster, args: Args) -> int:
    """kubectl v0.30.5 pkg/cmd/apply/apply.go: one `<kind>/<name> created|configured|unchanged` line
    per object, errors collected and printed at the end, exit 1 if any (the others still apply)."""
    docs = documents(ctx, args)
    dry_run = str(args.get("dry-run", "none"))
    dry_run = {"true": "client", "false": "none"}.get(dry_run.lower(), dry_run)
    if dry_run not in ("none", "client", "server"):
        # kubectl v0.30.5 pkg/cmd/util/helpers.go `GetDryRunStrategy`
        raise KubeError(f'error: Invalid dry-run value ({dry_run}). Must be "none", "server", or "client".')
    errors = []
    with cluster.edit() as state:
        for doc, source in docs:
            try:
                line, warning = api.apply(state, doc, args.get("namespace"), source, dry_run)
                if warning:  # kubectl writes it to ErrOut before patching
                    print(warning, file=sys.stderr)
                print(line)
            except KubeError as error:
                errors.append(str(error))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


def delete(ctx, cluster: Cluster, args: Args) -> int:
    """kubectl v0.30.5 pkg/cmd/delete/delete.go: `<kind> "<name>" deleted` per object; a missing one is
    `Error from server (NotFound): error when deleting "<source>": ...` unless --ignore-not-found."""
    errors = []
    with cluster.edit() as state:
        if args.files:
            for doc, source in documents(ctx, args):
                kind = api.resolve(state, doc, source)
                namespace = ""
                if kind.namespaced:
                    namespace = doc["metadata"].get("namespace") or args.get("namespace") or "default"
                obj = state.get(kind.kind, namespace, doc["metadata"]["name"])
                if obj is None:
                    if not args.on("ignore-not-found"):
                        errors.append(
                            f"Error from server (NotFound): error when deleting "
                            f'"{source}": {kind.resource} "{doc["metadata"]["name"]}"'
                            " not found"
                        )
                    continue
                print(api.delete(state, obj, kind))
        else:
            for kind, name in targets(args, args.words[1:], state):
                namespace = namespace_of(args) if kind.namespaced else ""
                if name is None:
                    if not (args.get("selector") or args.on("all")):
                        raise KubeError("error: resource(s) were provided, but no name was specified")
                    for obj in state.objects(kind.kind, namespace):
                        if _selected(obj, args.get("selector")):
                            print(api.delete(state, obj, kind))
                    continue
                obj = state.get(kind.kind, namespace or "", name)
                if obj is None:
                    if not args.on("ignore-not-found"):
                        errors.append(f'Error from server (NotFound): {kind.resource} "{name}" not found')
                    continue
                print(api.delete(state, obj, kind))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


def one(state: State, args: Args) -> tuple[Kind, dict, list[str]]:
    """`KIND NAME rest...` or `KIND/NAME rest...` -> the object and the rest of the words."""
    words = args.words[1:]
    if not words:
        raise KubeError("error: you must specify the type of resource")
    if "/" in words[0]:
        kind_name, name = words[0].split("/", 1)
        rest = words[1:]
    elif len(words) >= 2:
        kind_name, name, rest = words[0], words[1], words[2:]
    else:
        raise KubeError("error: resource(s) were provided, but no name was specified")
    kind = kind_of(kind_name, state)
    return kind, api.find(state, kind, namespace_of(args) or "default", name), rest


def label(ctx, cluster: Cluster, args: Args) -> int:
    """kubectl v0.30.5 pkg/cmd/label/label.go: `labeled`, `unlabeled`, `not labeled`, and
    `'<key>' already has a value (<v>), and --overwrite is false`."""
    with cluster.edit() as state:
        kind, obj, changes = one(state, args)
        if not changes:
            raise KubeError("error: at least one label update is required")
        line = api.label(state, obj, kind, changes, args.on("overwrite"))
        show(state, kind, obj, line, args)
    return 0


def show(state: State, kind: Kind, before: dict, line: str, args: Args) -> None:
    """kubectl's one-line result, or with `-o` the changed object itself."""
    output = str(args.get("output", ""))
    if not output:
        print(line)
        return
    metadata = before["metadata"]
    after = state.get(kind.kind, metadata.get("namespace", ""), metadata["name"]) or before
    emit([state.render(after)], output, True, None, args.on("no-headers"))


def patch(ctx, cluster: Cluster, args: Args) -> int:
    """kubectl v0.30.5 pkg/cmd/patch/patch.go: `patched`, or `patched (no change)`; --type defaults to
    strategic."""
    with cluster.edit() as state:
        kind, obj, _ = one(state, args)
        if "patch" not in args.flags:
            raise KubeError(
                "error: must specify --patch or --patch-file containing the contents of the patch"
            )
        line = api.patch(state, obj, kind, str(args.get("patch")), str(args.get("type", "strategic")))
        show(state, kind, obj, line, args)
    return 0


def version(ctx, cluster: Cluster, args: Args) -> int:
    """kubectl v0.30.5 pkg/cmd/version/version.go (`-o json`: clientVersion, kustomizeVersion,
    serverVersion); k3s reports gitVersion `v1.30.x+k3s1` for both."""
    info = cluster.layout.instance(SERVER) or {}
    build = {"major": "1", "minor": "30", "gitVersion": info.get("k3s_version", "v1.30.5+k3s1")}
    body = {
        "clientVersion": build,
        "kustomizeVersion": "v5.0.4-0.20230601165947-6ce0bf390ce3",
        "serverVersion": build,
    }
    if args.get("output") == "json":
        print(json.dumps(body, indent=2))
    else:
        print(f"Client Version: {build['gitVersion']}\nServer Version: {build['gitVersion']}")
    return 0


def main(ctx, argv: list[str]) -> int:
    from . import kubectl_watch

    verbs = {
        "get": get,
        "apply": apply,
        "delete": delete,
        "label": label,
        "patch": patch,
        "version": version,
        "wait": kubectl_watch.wait,
        "logs": kubectl_watch.logs,
        "exec": kubectl_watch.exec_,
        "rollout": kubectl_watch.rollout,
    }
    try:
        if ctx.node != SERVER:
            raise KubeError(NO_KUBECONFIG)
        info = ctx.layout.instance(SERVER)
        k3s_up = info and time.time() >= info["booted_at"] + ctx.config.delays.cloud_init
        if not k3s_up or k3s_missing(ctx.layout, ctx.config, SERVER):
            raise KubeError(REFUSED)
        args = parse(argv)
        if not args.words:
            raise KubeError("error: a command is required (get, apply, delete, ...)")
        verb = verbs.get(args.words[0])
        if verb is None:
            raise KubeError(f'error: unknown command "{args.words[0]}" for "kubectl"')
        return verb(ctx, Cluster(ctx.layout, ctx.config), args)
    except KubeError as error:
        print(str(error), file=sys.stderr)
        return 1
