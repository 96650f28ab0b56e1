"""Scenario files in, a typed model out: `scenarios/<name>.yaml` plus `manifests/<name>/` for the
course's own, or a learner's `<name>.yaml` anywhere, whose `apply` paths are relative to it.

Loading validates against the JSON Schema first, so every mistake in a scenario file is one line
naming the file and the field (`scenarios/x.yaml: steps[3].expect: ...`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from lab.errors import LabError
from lab.scenario.assertions import (
    EXEC_KINDS,
    LOG_KINDS,
    PATTERN_KINDS,
    Assertion,
    node_ip_refs,
    with_addresses,
)
from lab.scenario.schema import SCENARIO_SCHEMA
from lab.trace.expect import PathExpect

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS_DIR = REPO_ROOT / "scenarios"
MANIFESTS_DIR = REPO_ROOT / "manifests"
FORMAT_HINT = "the scenario format is described in docs/scenarios.md"

DEFAULT_TIMEOUTS = {
    "apply": 60.0,
    "wait": 180.0,
    "exec": 60.0,
    "logs": 60.0,
    "hostlogs": 60.0,
    "patch": 300.0,
}
DEFAULT_CLIENT = {"namespace": "default", "pod": "pod1", "container": "netshoot"}
DEFAULT_GATEWAYS = ({"namespace": "istio-system", "selector": "istio=egressgateway"},)


@dataclass(frozen=True)
class PodRef:
    namespace: str
    pod: str
    container: str


@dataclass(frozen=True)
class GatewayRef:
    namespace: str
    selector: str


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Apply:
    files: tuple[Path, ...]


@dataclass(frozen=True)
class Wait:
    namespace: str
    deployment: str | None = None
    pods: str | None = None


@dataclass(frozen=True)
class Exec:
    target: PodRef
    command: tuple[str, ...]


@dataclass(frozen=True)
class Logs:
    namespace: str
    container: str
    selector: str | None = None
    pod: str | None = None

    @property
    def subject(self) -> str:
        source = self.selector if self.selector else f"pod {self.pod}"
        return f"{self.container} log of {source} in {self.namespace}"


@dataclass(frozen=True)
class HostLogs:
    """A log file on a lab host (not a pod), read over SSH: what the far end saw."""

    node: str
    path: str

    @property
    def subject(self) -> str:
        return f"{self.path} on {self.node}"


@dataclass(frozen=True)
class Patch:
    """A JSON merge patch on a preserved installed object; cleanup restores the saved snapshot."""

    kind: str
    namespace: str
    name: str
    merge: str  # JSON text

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.namespace, self.name)


Action = Apply | Wait | Exec | Logs | HostLogs | Patch


@dataclass(frozen=True)
class Step:
    name: str
    action: Action
    timeout: float
    assertions: tuple[Assertion, ...] = ()

    @property
    def kind(self) -> str:
        return type(self.action).__name__.lower()

    @property
    def traces_path(self) -> bool:
        return any(a.kind == "path" for a in self.assertions)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    teaches: str
    steps: tuple[Step, ...]
    path: Path
    order: int = 1000
    explains: str = ""
    references: tuple[str, ...] = ()
    outbound_policy: str | None = None
    expected_findings: frozenset[str] = frozenset()
    preserve: tuple[ObjectRef, ...] = ()
    client: PodRef = field(default_factory=lambda: PodRef(**DEFAULT_CLIENT))
    gateways: tuple[GatewayRef, ...] = tuple(GatewayRef(**g) for g in DEFAULT_GATEWAYS)

    @property
    def registry_only(self) -> bool:
        """Whether the mesh runs with outboundTrafficPolicy REGISTRY_ONLY while the scenario runs."""
        return self.outbound_policy == "REGISTRY_ONLY"

    @property
    def manifests(self) -> list[Path]:
        """Every manifest the scenario applies, in order, each once."""
        files: list[Path] = []
        for step in self.steps:
            if isinstance(step.action, Apply):
                files += [f for f in step.action.files if f not in files]
        return files

    @property
    def assertions(self) -> list[tuple[Step, Assertion]]:
        return [(step, a) for step in self.steps for a in step.assertions]


def load_scenario_file(path: Path) -> Scenario:
    """A scenario named by its path: one of the course's (manifests in manifests/<name>/), or a
    learner's own anywhere else, its `apply` paths relative to the file's folder."""
    if not path.is_file():
        raise LabError(
            f"{path}: no such scenario file",
            "give a scenario name (see `invoke scenarios`) or the path of a .yaml file; "
            "`invoke scenario new NAME` writes one",
        )
    if path.resolve().parent == SCENARIOS_DIR:
        return load_scenario(path)
    return load_scenario(path, manifest_dir=path.resolve().parent)


def looks_like_path(name: str) -> bool:
    return "/" in name or name.endswith((".yaml", ".yml")) or name.startswith(".")


def load_scenario(
    path: Path, manifests_dir: Path = MANIFESTS_DIR, manifest_dir: Path | None = None
) -> Scenario:
    """`manifest_dir`: where its `apply` paths start; by default `manifests_dir/<name>`."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as error:
        line = f" line {error.problem_mark.line + 1}" if error.problem_mark else ""
        raise LabError(
            f"{path}:{line}: not valid YAML: {error.problem or error.context}", FORMAT_HINT
        ) from None
    except (OSError, yaml.YAMLError) as error:
        raise LabError(f"{path}: cannot read scenario: {_first_line(error)}", FORMAT_HINT) from None
    errors = list(Draft202012Validator(SCENARIO_SCHEMA).iter_errors(data))
    if errors:
        error = best_match(errors)
        where = _json_path(error.absolute_path) or "(top level)"
        raise LabError(f"{path}: {where}: {error.message}", FORMAT_HINT)
    if data["name"] != path.stem:
        raise LabError(f"{path}: name: '{data['name']}' must match the file name '{path.stem}'", FORMAT_HINT)
    return _build(data, path, manifest_dir or manifests_dir / data["name"])


def _build(data: dict[str, Any], path: Path, manifest_dir: Path) -> Scenario:
    client = PodRef(**{**DEFAULT_CLIENT, **data.get("client", {})})
    preserved = {ObjectRef(**o) for o in data.get("preserve", ())}
    steps: list[Step] = []
    seen_exec = False
    for index, raw in enumerate(data["steps"]):
        where = f"{path}: steps[{index}]"
        step = _build_step(raw, client, manifest_dir, where)
        if isinstance(step.action, Exec):
            seen_exec = True
        if isinstance(step.action, Logs | HostLogs) and not seen_exec:
            key = "logs" if isinstance(step.action, Logs) else "hostLogs"
            raise LabError(
                f"{where}.{key}: a {key} step reads logs since the last exec step; none before it",
                FORMAT_HINT,
            )
        if isinstance(step.action, Patch) and step.action.ref not in preserved:
            raise LabError(
                f"{where}.patch: {step.action.ref} is not listed under `preserve`",
                "add it there, so cleanup saves it first and restores it exactly",
            )
        if any(s.name == step.name for s in steps):
            raise LabError(
                f"{where}.name: '{step.name}' is used by an earlier step; names must be unique", FORMAT_HINT
            )
        steps.append(step)
    mesh = data.get("mesh", {})
    return Scenario(
        name=data["name"],
        title=data["title"],
        teaches=data["teaches"].strip(),
        explains=data.get("explains", "").strip(),
        references=tuple(data.get("references", ())),
        order=data.get("order", 1000),
        outbound_policy=mesh.get("outboundTrafficPolicy"),
        expected_findings=frozenset(data.get("expectedFindings", ())),
        preserve=tuple(ObjectRef(**o) for o in data.get("preserve", ())),
        client=client,
        gateways=tuple(GatewayRef(**g) for g in data.get("gateways", DEFAULT_GATEWAYS)),
        steps=tuple(steps),
        path=path,
    )


def _build_step(raw: dict[str, Any], client: PodRef, manifest_dir: Path, where: str) -> Step:
    expect = raw.get("expect", {})
    action: Action
    if "apply" in raw:
        names = [raw["apply"]] if isinstance(raw["apply"], str) else raw["apply"]
        files = tuple(manifest_dir / name for name in names)
        for name, file in zip(names, files, strict=True):
            if not file.is_file():
                raise LabError(f"{where}.apply: manifest '{name}' not found in {manifest_dir}", FORMAT_HINT)
        action, default_name, kinds, subject = Apply(files), f"apply {', '.join(names)}", (), ""
    elif "wait" in raw:
        action = Wait(**raw["wait"])
        what = (
            f"deployment/{action.deployment} Available" if action.deployment else f"pods {action.pods} Ready"
        )
        default_name, kinds, subject = f"wait for {what} in {action.namespace}", (), ""
    elif "exec" in raw:
        spec = raw["exec"]
        target = PodRef(
            spec.get("namespace", client.namespace),
            spec.get("pod", client.pod),
            spec.get("container", client.container),
        )
        action = Exec(target, tuple(spec["command"]))
        default_name, kinds, subject = f"exec {' '.join(action.command)[:60]}", EXEC_KINDS, "stdout"
    elif "patch" in raw:
        spec = raw["patch"]
        action = Patch(
            spec["kind"], spec["namespace"], spec["name"], json.dumps(spec["merge"], sort_keys=True)
        )
        default_name, kinds, subject = f"patch {action.ref}", (), ""
    elif "hostLogs" in raw:
        action = HostLogs(**raw["hostLogs"])
        default_name, kinds, subject = f"check {action.subject}", LOG_KINDS, action.subject
    else:
        action = Logs(**raw["logs"])
        default_name, kinds, subject = f"check the {action.subject}", LOG_KINDS, action.subject
    assertions: list[Assertion] = []
    for kind in kinds:
        if kind not in expect:
            continue
        if kind == "path":
            assert isinstance(action, Exec)
            if action.command[0].rsplit("/", 1)[-1] != "curl":
                raise LabError(
                    f"{where}.expect.path: the path is traced for a curl command; this step runs "
                    f"{action.command[0]!r}",
                    FORMAT_HINT,
                )
            if not any("://" in word for word in action.command[1:]):
                raise LabError(f"{where}.expect.path: the curl command has no URL to trace", FORMAT_HINT)
            assertions.append(Assertion(kind, PathExpect.from_spec(expect[kind]), subject))
            continue
        values = expect[kind] if isinstance(expect[kind], list) else [expect[kind]]
        if not isinstance(action, HostLogs) and any(node_ip_refs(str(v)) for v in values):
            raise LabError(
                f"{where}.expect.{kind}: {{node_ip:...}} is filled in for hostLogs steps only", FORMAT_HINT
            )
        if kind in PATTERN_KINDS:
            _check_patterns(values, f"{where}.expect.{kind}")
        assertions += [Assertion(kind, value, subject) for value in values]
    timeout = float(raw.get("timeout", DEFAULT_TIMEOUTS[type(action).__name__.lower()]))
    return Step(raw.get("name", default_name), action, timeout, tuple(assertions))


def _check_patterns(values: list[str], where: str) -> None:
    # Checked here, not when the assertion first runs: by then the scenario has changed the cluster.
    for value in values:
        try:
            re.compile(with_addresses(value, {}))
        except re.error as error:
            raise LabError(
                f"{where}: {value!r} is not a valid regular expression: {error}", FORMAT_HINT
            ) from None


def _json_path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


@dataclass(frozen=True)
class Broken:
    """A scenario file that does not load: listed with its error, and it blocks only itself."""

    name: str
    path: Path
    error: LabError


class Catalog(list):  # list[Scenario]
    """The scenarios that load, in course order, and `broken`: the files that do not."""

    broken: list[Broken]


def load_catalog(scenarios_dir: Path = SCENARIOS_DIR, manifests_dir: Path = MANIFESTS_DIR) -> Catalog:
    """Every scenario that loads, in the order the course takes them (`order`, then name); a file
    that does not load is kept aside in `.broken` and blocks only itself."""
    scenarios, broken = [], []
    for path in sorted(scenarios_dir.glob("*.yaml")):
        try:
            scenarios.append(load_scenario(path, manifests_dir))
        except LabError as error:
            broken.append(Broken(path.stem, path, error))
    catalog = Catalog(sorted(scenarios, key=lambda s: (s.order, s.name)))
    catalog.broken = broken
    return catalog


def broken_of(catalog: list[Scenario]) -> list[Broken]:
    return list(getattr(catalog, "broken", []))


def select(catalog: list[Scenario], names: list[str], run_all: bool) -> list[Scenario]:
    """The scenarios to run: named ones (a broken one raises its own error), or --all."""
    known = {s.name: s for s in catalog}
    valid = ", ".join(known) or "none"
    for name in names:
        failed = next((b for b in broken_of(catalog) if b.name == name and name not in known), None)
        if failed is not None:
            raise failed.error
    if run_all:
        if names:
            raise LabError("give scenario names or --all, not both", f"valid names: {valid}")
        return catalog
    if not names:
        raise LabError("which scenario? give a name or --all", f"valid names: {valid}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LabError(f"unknown scenario {', '.join(repr(n) for n in unknown)}", f"valid names: {valid}")
    return [known[n] for n in names]
