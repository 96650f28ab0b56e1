"""A fake cluster for engine tests: records every call and keeps just enough state (namespaces,
Istio resources, the mesh ConfigMap, installed Services/Deployments) for cleanup and leak checks.

Exec and log answers are scripted by the test, never computed from the engine's own logic.
"""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import yaml

from lab.errors import RemoteCommandError
from lab.nodes import CommandResult

ISTIO_KINDS = {
    "Gateway",
    "VirtualService",
    "DestinationRule",
    "ServiceEntry",
    "Sidecar",
    "EnvoyFilter",
    "Telemetry",
    "AuthorizationPolicy",
}
MESH = "accessLogFile: /dev/stdout\ndefaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n"
GATEWAY_SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {
        "name": "istio-egressgateway",
        "namespace": "istio-system",
        "labels": {"app": "istio-egressgateway", "istio": "egressgateway"},
        "uid": "u-1",
        "resourceVersion": "100",
        "creationTimestamp": "2024-01-01T00:00:00Z",
    },
    "spec": {
        "clusterIP": "10.43.0.50",
        "selector": {"app": "istio-egressgateway", "istio": "egressgateway"},
        "ports": [
            {"name": "http2", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"},
        ],
    },
    "status": {"loadBalancer": {}},
}
GATEWAY_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "istio-egressgateway",
        "namespace": "istio-system",
        "labels": {"app": "istio-egressgateway", "istio": "egressgateway"},
        "generation": 1,
        "annotations": {"deployment.kubernetes.io/revision": "1"},
    },
    "spec": {
        "selector": {"matchLabels": {"app": "istio-egressgateway", "istio": "egressgateway"}},
        "template": {
            "metadata": {"labels": {"app": "istio-egressgateway", "istio": "egressgateway"}},
            "spec": {
                "serviceAccountName": "istio-egressgateway-service-account",
                "containers": [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.23.2"}],
            },
        },
    },
    "status": {"availableReplicas": 1},
}

Responder = Callable[[tuple[str, ...]], tuple[int, str, str]]
# k3s-s's clock: minutes away from the laptop's (helpers.FIXED_NOW), as a laptop's can be.
CLUSTER_NOW = datetime(2024, 11, 26, 12, 27, 3, 250001, tzinfo=timezone.utc)


def ok(stdout: str = "") -> tuple[int, str, str]:
    return 0, stdout, ""


class FakeCluster:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...], str | None]] = []
        self.namespaces = {"default", "istio-system", "kube-system"}
        self.istio: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.objects = {
            ("service", "istio-system", "istio-egressgateway"): copy.deepcopy(GATEWAY_SERVICE),
            ("deployment", "istio-system", "istio-egressgateway"): copy.deepcopy(GATEWAY_DEPLOYMENT),
        }
        self.mesh = MESH
        self.exec: Responder = lambda args: ok("")
        self.logs: Responder = lambda args: ok("")
        self.on_call: Callable[[str, tuple[str, ...]], None] = lambda tool, args: None
        self.keep_on_delete: set[str] = set()  # names a buggy delete leaves behind
        self.now = CLUSTER_NOW
        self.shell: Responder = self._date
        self.node = FakeNode(self)

    # -- what tests read ------------------------------------------------------------------------
    def verbs(self) -> list[str]:
        """`kubectl apply`, `kubectl exec`, `istioctl analyze`... in call order."""
        return [f"{tool} {args[0]}" for tool, args, _ in self.calls]

    def stdin_of(self, verb: str) -> list[str]:
        return [stdin or "" for tool, args, stdin in self.calls if f"{tool} {args[0]}" == verb]

    # -- the protocol ----------------------------------------------------------------------------
    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float | None = None
    ) -> CommandResult:
        self.calls.append(("kubectl", args, stdin))
        self.on_call("kubectl", args)
        code, out, err = self._kubectl(args, stdin)
        if check and code:
            raise RemoteCommandError("k3s-s", "kubectl " + " ".join(args), code, err)
        return CommandResult("k3s-s", "kubectl " + " ".join(args), code, out, err)

    def kubectl_json(self, *args: str, timeout: float | None = None) -> dict[str, Any]:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def istioctl(self, *args: str, check: bool = True, timeout: float | None = None) -> CommandResult:
        self.calls.append(("istioctl", args, None))
        self.on_call("istioctl", args)
        return CommandResult("k3s-s", "istioctl " + " ".join(args), 0, "{}", "")

    def wait(
        self, *targets: str, condition: str, namespace: str, timeout: float, selector: str | None = None
    ) -> None:
        self.kubectl("wait", f"--for=condition={condition}", *targets, "-n", namespace)

    def _date(self, args: tuple[str, ...]) -> tuple[int, str, str]:
        if args[0] != "date":
            return 127, "", f"sh: {args[0]}: not found"
        return ok(f"{self.now:%Y-%m-%dT%H:%M:%S.%f}789Z\n")  # GNU date prints nanoseconds

    # -- kubectl ----------------------------------------------------------------------------------
    def _kubectl(self, args: tuple[str, ...], stdin: str | None) -> tuple[int, str, str]:
        verb = args[0]
        if verb == "apply":
            for doc in _docs(stdin):
                self._store(doc)
            return ok("applied\n")
        if verb == "delete":
            for doc in _docs(stdin):
                self._remove(doc)
            return ok("deleted\n")
        if verb == "get":
            return ok(json.dumps(self._get(args)))
        if verb == "patch":
            return self._patch(args)
        if verb == "exec":
            return self.exec(args)
        if verb == "logs":
            return self.logs(args)
        return ok("")

    def _store(self, doc: dict[str, Any]) -> None:
        kind, meta = doc["kind"], doc["metadata"]
        if kind == "Namespace":
            self.namespaces.add(meta["name"])
        elif kind in ISTIO_KINDS:
            self.istio[(kind, meta.get("namespace", "default"), meta["name"])] = doc
        elif kind in ("Service", "Deployment"):
            key = (kind.lower(), meta.get("namespace", "default"), meta["name"])
            self.objects[key] = {
                **copy.deepcopy(doc),
                "metadata": {**self.objects.get(key, doc)["metadata"], **meta},
            }

    def _remove(self, doc: dict[str, Any]) -> None:
        kind, meta = doc["kind"], doc["metadata"]
        if meta["name"] in self.keep_on_delete:
            return
        if kind == "Namespace":
            self.namespaces.discard(meta["name"])
        self.istio.pop((kind, meta.get("namespace", "default"), meta["name"]), None)
        self.objects.pop((kind.lower(), meta.get("namespace", "default"), meta["name"]), None)

    def _get(self, args: tuple[str, ...]) -> dict[str, Any]:
        what = args[1]
        if what == "namespaces":
            return _listing([{"kind": "Namespace", "metadata": {"name": n}} for n in sorted(self.namespaces)])
        if what.startswith("gateways."):
            return _listing(
                [
                    {"kind": k, "metadata": {"namespace": ns, "name": n}, "spec": o.get("spec")}
                    for (k, ns, n), o in sorted(self.istio.items())
                ]
            )
        if what == "configmap":
            return {"kind": "ConfigMap", "data": {"mesh": self.mesh}}
        if what == "pods":
            gateway = {
                "kind": "Pod",
                "metadata": {"name": "gateway-pod-1", "namespace": "demo", "labels": {"app": "gw"}},
                "spec": {"containers": [{"name": "istio-proxy", "args": ["proxy", "router"]}]},
            }
            client = {
                "kind": "Pod",
                "metadata": {"name": "pod1", "namespace": "default"},
                "spec": {
                    "containers": [
                        {"name": "netshoot"},
                        {"name": "istio-proxy", "args": ["proxy", "sidecar"]},
                    ]
                },
            }
            return _listing([client, gateway] if "-A" in args else [gateway])
        namespace, name = args[args.index("-n") + 1], args[2]
        found = [copy.deepcopy(self.objects[(kind, namespace, name)]) for kind in what.split(",")]
        return found[0] if len(found) == 1 else _listing(found)

    def _patch(self, args: tuple[str, ...]) -> tuple[int, str, str]:
        patch = json.loads(args[args.index("-p") + 1])
        if args[1] == "configmap":
            self.mesh = patch["data"]["mesh"]
        else:
            key = (args[1], args[args.index("-n") + 1], args[2])
            self.objects[key] = _merge(self.objects[key], patch)
        return ok("patched\n")


class FakeNode:
    """The shell on k3s-s: calls are recorded as tool `sh`; `cluster.shell` answers them."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster

    def run(
        self, command: str, *, stdin: str | None = None, check: bool = True, timeout: float | None = None
    ) -> CommandResult:
        args = tuple(shlex.split(command))
        self.cluster.calls.append(("sh", args, stdin))
        self.cluster.on_call("sh", args)
        code, out, err = self.cluster.shell(args)
        if check and code:
            raise RemoteCommandError("k3s-s", command, code, err)
        return CommandResult("k3s-s", command, code, out, err)


def _docs(text: str | None) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text or "") if d]


def _listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "items": items}


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result
