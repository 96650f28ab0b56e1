"""Settings: flags > environment (LAB_*) > lab.yaml > defaults.

Every setting has one name; the environment variable is `LAB_<NAME>` in upper case and the
lab.yaml key is the same name in lower case (dashes or underscores).

The `Settings` fields are the table of settings: a new setting is one field. Its kind (what a
valid value is) comes from `setting(default, KIND)` or, for a plain field, from its type
(`str`, `int`, `float`, `bool`, `Path`). Every value, whichever source gave it, is checked here,
so a mistake is one line naming the source (file and key, variable or flag) and the fix.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
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
DEFAULT_HOME = Path(".lab")
SETTINGS_HELP = "the README's Configuration section lists every setting"
# The name becomes the stack name `lab-<name>`: CloudFormation's own rule, minus the prefix.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,59}")


class _Invalid(ValueError):
    """A value a Kind refuses; the message says what a valid one looks like."""


@dataclass(frozen=True)
class Kind:
    """What a valid value of a setting is: `parse` turns text or a YAML scalar into the value."""

    id: str
    expects: str  # "a port number from 1 to 65535": completes "set X to ..."
    parse: Callable[[Any], Any]


def _scalar_text(value: Any) -> str:
    # YAML reads `name: 123` as an int: accept it as text. Lists, mappings and booleans are mistakes.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Invalid()
    text = str(value).strip()
    if not text:
        raise _Invalid()
    return text


def text(expects: str = "a text value", pattern: str | None = None, check: Callable | None = None) -> Kind:
    compiled = re.compile(pattern) if pattern else None

    def parse(value: Any) -> str:
        result = _scalar_text(value)
        if compiled and not compiled.fullmatch(result):
            raise _Invalid()
        if check:
            try:
                check(result)
            except ValueError:
                raise _Invalid() from None
        return result

    return Kind(f"text:{pattern or ''}:{getattr(check, '__name__', '')}", expects, parse)


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, str | int) else None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _Invalid()  # `ture` is a typo, not false


def integer(low: int, high: int, expects: str) -> Kind:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise _Invalid()
        try:
            number = int(value) if isinstance(value, int | float) else int(_scalar_text(value), 10)
        except ValueError:
            raise _Invalid() from None
        if not low <= number <= high:
            raise _Invalid()
        return number

    return Kind(f"integer:{low}:{high}", expects, parse)


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise _Invalid()
    try:
        number = float(value) if isinstance(value, int | float) else float(_scalar_text(value))
    except ValueError:
        raise _Invalid() from None
    if not 0 < number < float("inf"):
        raise _Invalid()
    return number


def _seconds_or_zero(value: Any) -> float:
    if not isinstance(value, bool) and isinstance(value, int | float | str) and str(value).strip() in ("0", "0.0"):
        return 0.0
    return _seconds(value)


def _path(value: Any) -> Path:
    return Path(_scalar_text(value)).expanduser()


TEXT = text()
BOOLEAN = Kind("boolean", "true or false (also yes/no, on/off, 1/0)", _boolean)
SECONDS = Kind("seconds", "a positive number of seconds, e.g. 300", _seconds)
SECONDS_OR_ZERO = Kind("seconds-or-0", "0 (derived) or a positive number of seconds, e.g. 1800", _seconds_or_zero)
PATH = Kind("path", "a file or folder path", _path)
PORT = integer(1, 65535, "a port number from 1 to 65535, e.g. 22")
KINDS_BY_TYPE = {"str": TEXT, "bool": BOOLEAN, "int": integer(0, 2**31, "a whole number"), "float": SECONDS}


# A duration such as `30m`, `6h`, `2d` or `1h30m`, or `none`: kept as text for its user to read.
DURATION = text("a duration such as 30m, 6h or 2d, or none", r"(?i:none|(\d+[smhd])+)")


def setting(default: Any, kind: Kind, **options: Any) -> Any:
    """A Settings field with its kind (a plain field gets one from its type)."""
    return field(default=default, metadata={"kind": kind}, **options)


def _cidr(value: str) -> None:
    ipaddress.IPv4Network(value, strict=False)


@dataclass
class Settings:
    name: str = setting(
        "egress",
        text(
            "a lab name (letters, digits and dashes, starting with a letter or digit, at most 60)",
            NAME_PATTERN.pattern,
        ),
    )
    region: str = setting(DEFAULT_REGION, text("an AWS region, e.g. ap-northeast-2", r"[a-z]+(-[a-z]+)*-\d+"))
    profile: str | None = None
    instance_type: str = setting(
        "t3.medium", text("an EC2 instance type, e.g. t3.medium", r"[a-z][a-z0-9-]*\.[a-z0-9]+")
    )
    k3s_version: str = setting(
        K3S_VERSION, text(f"a k3s release, e.g. {K3S_VERSION}", r"v\d+\.\d+\.\d+\+k3s\d+")
    )
    istio_version: str = setting(
        ISTIO_VERSION, text(f"an Istio release, e.g. {ISTIO_VERSION}", r"\d+\.\d+\.\d+")
    )
    netshoot_image: str = setting(NETSHOOT_IMAGE, text(f"an image reference, e.g. {NETSHOOT_IMAGE}", r"\S+"))
    key_name: str | None = None
    key_file: str | None = None
    ssh_cidr: str | None = setting(None, text("an IPv4 CIDR, e.g. 203.0.113.7/32", check=_cidr))
    allow_wide_ssh: bool = False
    ssh_port: int = setting(22, PORT)
    ssh_user: str = setting("ubuntu", text("a user name, e.g. ubuntu", r"[A-Za-z0-9_][A-Za-z0-9_.-]*"))
    ssh_timeout: float = setting(600.0, SECONDS)
    ready_timeout: float = setting(300.0, SECONDS)
    # The lab's lifetime (90m, 4h, 2d or none); lab/deadline.py checks its range.
    ttl: str = setting("6h", DURATION)
    # cloud-init's deadline per node; 0: derived from its user data (lab/steps/cloudinit.py)
    boot_timeout: float = setting(0.0, SECONDS_OR_ZERO)
    home: Path = field(default=DEFAULT_HOME, metadata={"kind": PATH})
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


@dataclass(frozen=True)
class Given:
    """One value and where it came from, to name that place in an error."""

    value: Any
    source: str  # "lab.yaml: ssh_port", "LAB_SSH_PORT", "--ssh-port"
    fix: str  # how the user changes it: "fix ssh_port in lab.yaml"


def kind_of(f: Field) -> Kind:
    if "kind" in f.metadata:
        return f.metadata["kind"]
    declared = str(f.type).replace(" ", "")
    if "Path" in declared:
        return PATH
    for type_name, kind in KINDS_BY_TYPE.items():
        if (
            declared == type_name
            or declared.startswith(f"{type_name}|")
            or declared.endswith(f"|{type_name}")
        ):
            return kind
    return TEXT


def setting_kinds() -> dict[str, Kind]:
    """Every user setting and its kind, in declaration order (for the README and the tests)."""
    return {f.name: kind_of(f) for f in _user_fields()}


def load_settings(flags: dict[str, Any] | None = None, config_file: Path | None = None) -> Settings:
    """Merge defaults, lab.yaml, environment and flags (flags win). Unset flags are None."""
    given: dict[str, Given] = {}
    path = config_file or Path(os.environ.get("LAB_CONFIG", CONFIG_FILE))
    if path.is_file():
        given.update(_read_config_file(path))
    for f in _user_fields():
        for var in (f"LAB_{f.name.upper()}", *_ENV_ALIASES.get(f.name, ())):
            if os.environ.get(var):
                given[f.name] = Given(os.environ[var], var, f"set {var} to another value, or unset it")
                break
    known = {f.name for f in _user_fields()}
    for name, value in (flags or {}).items():
        if value is None:
            continue
        if name not in known:
            raise TypeError(f"load_settings: unknown flag setting {name!r}")  # a bug in tasks.py
        flag = "--" + name.replace("_", "-")
        given[name] = Given(value, flag, f"pass another {flag}")
    kinds = setting_kinds()
    values = {name: _check(name, kinds[name], item) for name, item in given.items()}
    return Settings(**values, explicit=frozenset(values))


def _check(name: str, kind: Kind, given: Given) -> Any:
    if given.value is None:  # `profile:` with nothing after it in lab.yaml: the default
        return _default(name)
    try:
        return kind.parse(given.value)
    except _Invalid:
        raise UsageError(f"{given.source}: {given.value!r} is not {kind.expects}", given.fix) from None


def _default(name: str) -> Any:
    f = next(f for f in _user_fields() if f.name == name)
    return f.default_factory() if f.default is MISSING else f.default  # type: ignore[misc]


def _user_fields() -> list[Field]:
    return [f for f in fields(Settings) if not f.metadata.get("internal")]


def _read_config_file(path: Path) -> dict[str, Given]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.MarkedYAMLError as error:
        line = f" line {error.problem_mark.line + 1}:" if error.problem_mark else ""
        raise UsageError(
            f"{path}:{line} not valid YAML: {error.problem or error.context}",
            "fix the file (one `setting: value` per line) or remove it",
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UsageError(f"{path}: cannot read settings: {error}", "fix the file or remove it") from None
    if not isinstance(data, dict):
        raise UsageError(
            f"{path} must be a mapping of settings (`setting: value` lines), not a {type(data).__name__}",
            SETTINGS_HELP,
        )
    known = [f.name for f in _user_fields()]
    values = {str(k).strip().replace("-", "_"): (str(k), v) for k, v in data.items()}
    unknown = [key for key in values if key not in known]
    if unknown:
        guesses = [(values[k][0], difflib.get_close_matches(k, known, n=1, cutoff=0.6)) for k in unknown]
        hint = "; ".join(
            f"did you mean '{match[0]}'" + (f" for '{key}'" if len(unknown) > 1 else "") + "?"
            for key, match in guesses
            if match
        )
        raise UsageError(
            f"{path}: unknown setting{'s' if len(unknown) > 1 else ''} "
            + ", ".join(repr(values[k][0]) for k in unknown),
            (f"{hint} ({SETTINGS_HELP})" if hint else SETTINGS_HELP),
        )
    return {
        name: Given(value, f"{path}: {key}", f"fix {key} in {path}") for name, (key, value) in values.items()
    }
