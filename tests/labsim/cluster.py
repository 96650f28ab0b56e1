"""The simulated cluster: Kubernetes objects in one JSON file that every kubectl and istioctl
call reads and writes under a file lock. Readiness is computed when read, from timestamps."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from . import k3s, workloads
from .config import CLUSTER_NODES, SERVER, Layout, SimConfig
from .kinds import Kind, iso, key, key_of
from .node_tools import k3s_missing

SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "generation")


class KubeError(Exception):
    """What kubectl would print on stderr before exiting 1."""


def matches(labels: dict, selector: str | None) -> bool:
    """Equality-based label selectors: `a=b,c==d,e!=f,g,!h` (kubernetes/apimachinery v0.30.5
    pkg/labels/selector.go `Parse`; set-based `in`/`notin` are not needed by the lab)."""
    for term in filter(None, (t.strip() for t in (selector or "").split(","))):
        if "!=" in term:
            name, value = term.split("!=", 1)
            if labels.get(name.strip()) == value.strip():
                return False
        elif "=" in term:
            name, value = term.replace("==", "=").split("=", 1)
            if labels.get(name.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


class State:
    """One loaded copy of the cluster; changes are saved when `Cluster.edit` exits."""

    def __init__(self, data: dict, layout: Layout, config: SimConfig) -> None:
        self.data = data
        self.layout = layout
        self.config = config
        self.now = time.time()

    # -- storage -------------------------------------------------------------------------------
    def objects(self, kind: str | None = None, namespace: str | None = None) -> list[dict]:
        found = []
        for name, obj in sorted(self.data["objects"].items()):
            obj_kind, obj_ns, _ = name.split("/", 2)
            if (kind is None or obj_kind == kind) and (namespace is None or obj_ns == namespace):
                found.append(obj)
        return found

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        return self.data["objects"].get(key(kind, namespace, name))

    def meta(self, obj: dict) -> dict:
        return self.data["meta"].setdefault(key_of(obj), {})

    def next_number(self, counter: str, start: int) -> int:
        value = self.data["counters"].get(counter, start)
        self.data["counters"][counter] = value + 1
        return value

    def put(self, obj: dict) -> None:
        metadata = obj["metadata"]
        metadata.setdefault("uid", str(uuid.uuid4()))
        metadata.setdefault("creationTimestamp", iso(self.now))
        metadata["resourceVersion"] = str(self.next_number("resourceVersion", 1000))
        self.data["objects"][key_of(obj)] = obj

    def remove(self, obj: dict) -> None:
        name = key_of(obj)
        self.data["objects"].pop(name, None)
        self.data["meta"].pop(name, None)
        kind, namespace, obj_name = name.split("/", 2)
        if kind == "Namespace":
            for other in self.objects(namespace=obj_name):
                self.remove(other)
        elif kind == "Deployment":
            for pod in workloads.owned_pods(self, name):
                self.remove(pod)
        elif kind == "Pod":
            prefix = f"{namespace}/{obj_name}/"
            for log in [n for n in self.data["logs"] if n.startswith(prefix)]:
                del self.data["logs"][log]

    def served(self, kind: Kind) -> bool:
        return not kind.istio or bool(self.get("CustomResourceDefinition", "", kind.resource))

    # -- logs ----------------------------------------------------------------------------------
    def append_log(self, namespace: str, pod: str, container: str, line: str) -> None:
        self.data["logs"].setdefault(f"{namespace}/{pod}/{container}", []).append([self.now, line])

    def log_lines(self, namespace: str, pod: str, container: str) -> list[list]:
        return self.data["logs"].get(f"{namespace}/{pod}/{container}", [])

    # -- nodes, computed from the instances the watcher booted ---------------------------------
    def node_info(self, node: str) -> dict | None:
        return self.layout.instance(node)

    def nodes(self) -> list[dict]:
        found = []
        for index, node in enumerate(CLUSTER_NODES):
            info = self.node_info(node)
            if not info or k3s_missing(self.layout, self.config, node):
                continue
            joined = info["booted_at"] + self.config.delays.cloud_init
            if self.now >= joined:
                ready = self.now >= joined + self.config.delays.node_ready
                found.append(k3s.node_object(node, index, info, joined, ready))
        return found

    # -- views -----------------------------------------------------------------------------------
    def render(self, obj: dict) -> dict:
        """The object as the API server would return it, status included."""
        if obj["kind"] == "Pod":
            return workloads.render_pod(self, obj)
        if obj["kind"] == "Deployment":
            return workloads.render_deployment(self, obj)
        return copy.deepcopy(obj)

    def listing(self, kind: Kind, namespace: str | None) -> list[dict]:
        if kind.kind == "Node":
            return self.nodes()
        return [self.render(o) for o in self.objects(kind.kind, namespace)]


class Cluster:
    def __init__(self, layout: Layout, config: SimConfig) -> None:
        self.layout = layout
        self.config = config

    def _identity(self) -> str:
        info = self.layout.instance(SERVER)
        return info["instance_id"] if info else "none"

    def _load(self) -> tuple[State, bool]:
        """The stored cluster, or a new one (second value True) when k3s-s is a new instance."""
        try:
            data = json.loads(self.layout.cluster_file.read_text())
        except FileNotFoundError:
            data = None
        identity = self._identity()
        if data is None or (identity != "none" and data["cluster_id"] != identity):
            # a new k3s-s instance is a new cluster
            data = {
                "cluster_id": identity,
                "objects": {},
                "meta": {},
                "logs": {},
                "counters": {},
                "istio": None,
                "transient_left": self.config.faults.kubectl_transient,
            }
            state = State(data, self.layout, self.config)
            k3s.seed(state)
            return state, True
        return State(data, self.layout, self.config), False

    @contextmanager
    def edit(self) -> Iterator[State]:
        with open(self.layout.cluster_lock, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state, _ = self._load()
            yield state
            temporary = self.layout.cluster_file.with_suffix(".tmp")
            temporary.write_text(json.dumps(state.data))
            os.replace(temporary, self.layout.cluster_file)

    def read(self) -> State:
        with open(self.layout.cluster_lock, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            state, fresh = self._load()
        if not fresh:
            return state
        with self.edit() as state:  # save the new cluster so every reader sees the same one
            return state
