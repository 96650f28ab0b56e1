"""The lab's local state: `.lab/<name>/state.json`, written atomically.

A crash or Ctrl-C while saving leaves either the old file or the new one, never half of one:
we write a temporary file in the same folder and rename it over the old one.
"""

from __future__ import annotations

import json
import os
import tempfile
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.spec import LabSpec


@dataclass
class NodeInfo:
    name: str
    public_ip: str
    private_ip: str
    instance_id: str | None = None


@dataclass
class StepRecord:
    done: bool
    seconds: float
    finished_at: str


@dataclass
class LabState:
    name: str
    region: str  # where the stack is looked for: the spec's region once preflight built it
    stack_name: str
    stack_id: str | None = None
    owner: str | None = None
    account: str | None = None
    created_at: str | None = None
    spec: LabSpec | None = None  # what the lab is (lab/spec.py), saved whole
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    steps: dict[str, StepRecord] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    # A scenario cleanup abandoned with a second Ctrl-C: {"scenario": name, "undo": Undo as JSON}.
    pending_cleanup: dict[str, Any] | None = None

    # Read-only views of the spec, for the readers that predate it.
    @property
    def ssh_cidr(self) -> str | None:
        return self.spec.ssh_cidr if self.spec else None

    @property
    def instance_type(self) -> str | None:
        return self.spec.instance_type if self.spec else None

    @property
    def key_name(self) -> str | None:
        return self.spec.key_name if self.spec else None

    @property
    def key_file(self) -> str | None:
        return self.spec.key_file if self.spec else None

    @property
    def key_created(self) -> bool:
        return bool(self.spec and self.spec.key_created)

    @property
    def versions(self) -> dict[str, str]:
        return self.spec.versions if self.spec else {}

    def step_done(self, step: str) -> bool:
        record = self.steps.get(step)
        return bool(record and record.done)

    def record_step(self, step: str, done: bool, seconds: float) -> None:
        self.steps[step] = StepRecord(done, round(seconds, 3), now_iso())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> LabState:
        """Build from parsed JSON, checking every field's type (TypeError names the first wrong one)."""
        return _build(cls, _migrated(data), "state")


# The spec's facts as a state file written before lab/spec.py kept them (flat fields).
_LEGACY = ("ssh_cidr", "instance_type", "key_name", "key_file", "key_created", "versions")


def _migrated(data: Any) -> Any:
    if not isinstance(data, dict) or not any(k in data for k in _LEGACY):
        return data
    data = dict(data)
    old = {k: data.pop(k) for k in _LEGACY if k in data}
    versions = old.get("versions") if isinstance(old.get("versions"), dict) else {}
    spec = {
        "name": data.get("name"),
        "region": data.get("region"),
        "instance_type": old.get("instance_type"),
        "k3s_version": versions.get("k3s"),
        "istio_version": versions.get("istio"),
        "netshoot_image": versions.get("netshoot"),
        "ssh_cidr": old.get("ssh_cidr"),
        "key_name": old.get("key_name"),
        "key_file": old.get("key_file"),
        "key_created": old.get("key_created", False),
    }
    if "spec" not in data and all(v is not None for v in spec.values()):
        data["spec"] = spec
    return data


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"{where} is {type(data).__name__}, not an object")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TypeError(f"{where} has unknown field(s) {', '.join(unknown)}")
    return cls(**{name: _value(hints[name], value, f"{where}.{name}") for name, value in data.items()})


def _value(kind: Any, value: Any, where: str) -> Any:
    """`value` checked against the annotation `kind` (the few shapes the state uses)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{where} is {type(value).__name__}, not an object")
        return {str(k): _value(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if is_dataclass(kind):
        return _build(kind, value, where)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise TypeError(f"{where} is {type(value).__name__}, not {kind.__name__}")
    return value


class StateDamaged(LabError):
    """state.json exists but cannot be read back: the stack can stand in for it."""


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def state_path(lab_dir: Path) -> Path:
    return lab_dir / "state.json"


def load_state(lab_dir: Path) -> LabState | None:
    path = state_path(lab_dir)
    if not path.exists():
        return None
    try:
        return LabState.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError) as error:
        raise StateDamaged(
            f"{path} is damaged ({error})", "`invoke up` rebuilds it from the stack; `invoke down` needs none"
        ) from None


def save_state(lab_dir: Path, state: LabState) -> None:
    write_private(state_path(lab_dir), state.to_json() + "\n")


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write `text` to `path` atomically with `mode` from the first byte (no window of 0644)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
