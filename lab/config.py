"""Settings: flags > environment (LAB_*) > lab.yaml > defaults.

Every setting has one name; the environment variable is `LAB_<NAME>` in upper case and the
lab.yaml key is the same name in lower case (dashes or underscores).
"""

from __future__ import annotations

import os
import re
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from lab.errors import UsageError

DEFAULT_REGION = "ap-northeast-2"
# Istio 1.23 supports Kubernetes 1.27 to 1.30: keep these two pins moving together.
K3S_VERSION = "v1.30.5+k3s1"
ISTIO_VERSION = "1.23.2"
NETSHOOT_IMAGE = "nicolaka/netshoot:v0.13"
CONFIG_FILE = "lab.yaml"
# The name becomes the stack name `lab-<name>`: CloudFormation's own rule, minus the prefix.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,59}")


@dataclass
class Settings:
    name: str = "egress"
    region: str = DEFAULT_REGION
    profile: str | None = None
    instance_type: str = "t3.medium"
    k3s_version: str = K3S_VERSION
    istio_version: str = ISTIO_VERSION
    netshoot_image: str = NETSHOOT_IMAGE
    key_name: str | None = None
    key_file: str | None = None
    ssh_cidr: str | None = None
    allow_wide_ssh: bool = False
    ssh_port: int = 22
    ssh_user: str = "ubuntu"
    ssh_timeout: float = 600.0
    ready_timeout: float = 300.0
    # The lab's lifetime (90m, 4h, 2d or none); lab/deadline.py parses and checks it.
    ttl: str = "6h"
    boot_timeout: float = 0.0  # cloud-init's deadline per node; 0: derived from its user data
    home: Path = field(default_factory=lambda: Path(".lab"))
    # The settings the user gave (flag, environment or lab.yaml), as opposed to defaults.
    explicit: frozenset[str] = field(default_factory=frozenset, metadata={"internal": True})

    @property
    def stack_name(self) -> str:
        return f"lab-{self.name}"

    @property
    def lab_dir(self) -> Path:
        return self.home / self.name

    @property
    def own_key_name(self) -> str:
        return f"lab-{self.name}"


_ENV_ALIASES = {
    "region": ("LAB_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    "profile": ("AWS_PROFILE",),
}


def load_settings(flags: dict[str, Any] | None = None, config_file: Path | None = None) -> Settings:
    """Merge defaults, lab.yaml, environment and flags (flags win). Unset flags are None."""
    values: dict[str, Any] = {}
    path = config_file or Path(os.environ.get("LAB_CONFIG", CONFIG_FILE))
    if path.exists():
        values.update(_read_config_file(path))
    for f in _user_fields():
        for var in (f"LAB_{f.name.upper()}", *_ENV_ALIASES.get(f.name, ())):
            if os.environ.get(var):
                values[f.name] = os.environ[var]
                break
    values.update({k: v for k, v in (flags or {}).items() if v is not None})
    name = str(values.get("name", Settings.name))
    if not NAME_PATTERN.fullmatch(name):
        raise UsageError(
            f"lab name '{name}' is not valid",
            "use letters, digits and dashes, starting with a letter or digit (at most 60)",
        )
    given = {f.name: _coerce(f.name, f.type, values[f.name]) for f in _user_fields() if f.name in values}
    return Settings(**given, explicit=frozenset(given))


def _user_fields() -> list[Field]:
    return [f for f in fields(Settings) if not f.metadata.get("internal")]


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UsageError(f"{path} is not valid YAML: {error}", "fix the file or remove it") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} must be a mapping of settings", "see the README's Configuration section")
    known = {f.name for f in _user_fields()}
    values = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(
            f"{path}: unknown setting(s) {', '.join(unknown)}", f"known: {', '.join(sorted(known))}"
        )
    return values


def _coerce(name: str, kind: Any, value: Any) -> Any:
    kind = str(kind)
    try:
        if "bool" in kind:
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
        if "Path" in kind:
            return Path(value)
    except (TypeError, ValueError):
        raise UsageError(
            f"setting {name}={value!r} is not a valid {kind}", f"set {name} to a {kind}"
        ) from None
    return str(value) if value is not None else None
