"""Where a scenario's manifests are, and what mesh settings it asks for."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

import lab
from lab.errors import LabError

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
NOT_SCENARIOS = frozenset({"lab"})  # manifests/lab holds what `up` applies (the netshoot pods)


def repo_root() -> Path:
    """The checkout that holds manifests/ and scenarios/ (LAB_ROOT overrides, for tests)."""
    override = os.environ.get("LAB_ROOT")
    return Path(override) if override else Path(lab.__file__).resolve().parents[1]


def known_scenarios(root: Path) -> list[str]:
    names = {p.name for p in (root / "manifests").glob("*") if p.is_dir()}
    names |= {p.stem for p in (root / "scenarios").glob("*.yaml")}
    return sorted(names - NOT_SCENARIOS)


def scenario_manifests(name: str) -> tuple[Path, bool]:
    """The scenario's manifest folder, and whether its mesh is REGISTRY_ONLY."""
    root = repo_root()
    folder = root / "manifests" / name
    if not _NAME.match(name) or name in NOT_SCENARIOS or not folder.is_dir():
        known = ", ".join(known_scenarios(root)) or "none yet"
        raise LabError(f"unknown scenario {name!r}", f"known scenarios: {known}")
    return folder, _registry_only(root / "scenarios" / f"{name}.yaml")


def _registry_only(spec: Path) -> bool:
    if not spec.is_file():
        return False
    try:
        data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise LabError(f"{spec}: not valid YAML: {str(error).splitlines()[0]}") from None
    mesh = data.get("mesh") if isinstance(data, dict) else None
    policy = mesh.get("outboundTrafficPolicy") if isinstance(mesh, dict) else None
    if isinstance(policy, dict):  # also accept meshConfig's own shape: {mode: REGISTRY_ONLY}
        policy = policy.get("mode")
    return policy == "REGISTRY_ONLY"
