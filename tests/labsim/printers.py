"""How simulated kubectl prints what it got: JSON, YAML, names, or a short table.

kubernetes/kubectl v0.30.5 pkg/cmd/get/get.go `printGeneric` (several objects, or a kind without a
name: a `List` with `metadata.resourceVersion`) and `Run` (`No resources found in NS namespace.` on
stderr when nothing printed); kubernetes/cli-runtime v0.30.5 pkg/printers/json.go (four-space indent;
Go marshals maps with sorted keys).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime

import yaml

from .cluster import KubeError
from .kinds import by_name

# kubernetes/kubectl v0.30.5 pkg/cmd/get/get_flags.go `AllowedFormats`, in its order
ALLOWED_FORMATS = (
    "json,yaml,name,go-template,go-template-file,template,templatefile,jsonpath,jsonpath-as-json,"
    "jsonpath-file,custom-columns,custom-columns-file,wide"
)


def emit(objects: list[dict], output: str, single: bool, namespace: str | None, no_headers: bool) -> None:
    if output in ("json", "yaml"):
        body = (
            objects[0]
            if single and objects
            else {"apiVersion": "v1", "items": objects, "kind": "List", "metadata": {"resourceVersion": ""}}
        )
        if single and not objects:
            return
        if output == "json":
            print(json.dumps(body, indent=4, ensure_ascii=False, sort_keys=True))
        else:
            print(yaml.safe_dump(body, sort_keys=False), end="")
        return
    if output == "name":
        for obj in objects:
            print(f"{by_name(obj['kind']).qualified}/{obj['metadata']['name']}")
        return
    if output not in ("", "wide"):
        # cli-runtime v0.30.5 pkg/genericclioptions/print_flags.go `NoCompatiblePrinterError`
        raise KubeError(
            f"error: unable to match a printer suitable for the output format "
            f'"{output}", allowed formats are: {ALLOWED_FORMATS}'
        )
    if not objects:
        where = " in " + namespace + " namespace" if namespace else ""
        print(f"No resources found{where}.", file=sys.stderr)
        return
    table(objects, namespace is None, no_headers)


def table(objects: list[dict], with_namespace: bool, no_headers: bool) -> None:
    rows = []
    for obj in objects:
        row = [obj["metadata"].get("namespace", "")] if with_namespace else []
        row.append(obj["metadata"]["name"])
        status = obj.get("status", {})
        if obj["kind"] == "Pod":
            ready = sum(c["ready"] for c in status["containerStatuses"])
            row += [f"{ready}/{len(status['containerStatuses'])}", status["phase"], "0"]
        elif obj["kind"] == "Deployment":
            ready = status.get("readyReplicas", 0)
            row += [f"{ready}/{obj['spec'].get('replicas', 1)}", str(status["replicas"]), str(ready)]
        elif obj["kind"] == "Node":
            ready = status["conditions"][-1]["status"] == "True"
            row += ["Ready" if ready else "NotReady", obj["status"]["nodeInfo"]["kubeletVersion"]]
        elif obj["kind"] == "Service":
            ports = ",".join(
                f"{p['port']}{':' + str(p['nodePort']) if 'nodePort' in p else ''}/{p.get('protocol', 'TCP')}"
                for p in obj["spec"].get("ports", [])
            )
            row += [obj["spec"].get("type", "ClusterIP"), obj["spec"].get("clusterIP", ""), ports]
        row.append(_age(obj["metadata"].get("creationTimestamp")))
        rows.append(row)
    if not no_headers:
        print("   ".join(_headers(objects[0]["kind"], with_namespace)))
    for row in rows:
        print("   ".join(row))


def _headers(kind: str, with_namespace: bool) -> list[str]:
    extra = {
        "Pod": ["READY", "STATUS", "RESTARTS"],
        "Deployment": ["READY", "UP-TO-DATE", "AVAILABLE"],
        "Node": ["STATUS", "VERSION"],
        "Service": ["TYPE", "CLUSTER-IP", "PORT(S)"],
    }.get(kind, [])
    return (["NAMESPACE"] if with_namespace else []) + ["NAME", *extra, "AGE"]


def _age(stamp: str | None) -> str:
    if not stamp:
        return "<unknown>"
    seconds = int(time.time() - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"
