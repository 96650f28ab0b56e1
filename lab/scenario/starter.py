"""`invoke scenario new NAME [--from EXISTING]`: a scenario of one's own, written in the current folder.

The copy is `NAME.yaml` plus the manifests it applies in `NAME/`, its `apply` paths rewritten to
point there (a learner's scenario resolves them relative to its own file). The source's text is
kept, comments included; only `name:` and the `apply` values change.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from lab.errors import LabError, UsageError
from lab.scenario.model import (
    FORMAT_HINT,
    Apply,
    Scenario,
    load_catalog,
    load_scenario_file,
    looks_like_path,
    select,
)

# Without --from: the course's plainest scenario with evidence of the path (gateway and sidecar logs).
STARTER = "egress-gateway-http"
NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_APPLY = re.compile(r"^(?P<lead>\s*(?:-\s+)?apply:[ \t]*)(?P<value>[^#\n]*?)(?P<tail>[ \t]*(?:#.*)?)$")
_ITEM = re.compile(r"^(?P<lead>\s*-\s+)(?P<value>[^#\n]*?)(?P<tail>[ \t]*(?:#.*)?)$")


def new_scenario(name: str, source: str | None, folder: Path) -> Path:
    if not NAME.fullmatch(name):
        raise UsageError(
            f"scenario name '{name}' is not valid",
            "use lower-case letters, digits, dashes and dots, starting and ending with a letter or digit",
        )
    target, manifests = folder / f"{name}.yaml", folder / name
    for path in (target, manifests):
        if path.exists():
            raise UsageError(f"{path} already exists", "pick another name, or move it away first")
    original = _source(source)
    files = _manifests(original)
    text = _rewrite(original.path.read_text(), name, {entry: f"{name}/{entry}" for entry in files})
    header = (
        f"# Written by `invoke scenario new {name} --from {original.name}`: edit it, then run\n"
        f"# `invoke scenario {target.name}`. Every key is described in docs/scenarios.md.\n"
    )
    manifests.mkdir(parents=True)
    try:
        for entry, file in files.items():
            copy = manifests / entry
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, copy)
        target.write_text(header + text)
        load_scenario_file(target)  # what was written must run as it is
    except BaseException:
        target.unlink(missing_ok=True)
        shutil.rmtree(manifests, ignore_errors=True)
        raise
    return target


def _source(source: str | None) -> Scenario:
    if source and looks_like_path(source):
        return load_scenario_file(Path(source))
    catalog = load_catalog()
    if source is None:
        if not catalog:
            raise LabError("the course has no scenario to start from", "pass --from PATH")
        return next((s for s in catalog if s.name == STARTER), catalog[0])
    [found] = select(catalog, [source], run_all=False)
    return found


def _manifests(scenario: Scenario) -> dict[str, Path]:
    """Each `apply` entry as written in the file, and the file it names."""
    data = yaml.safe_load(scenario.path.read_text())
    entries: dict[str, Path] = {}
    applies = [s for s in scenario.steps if isinstance(s.action, Apply)]
    raw = [r["apply"] for r in data["steps"] if "apply" in r]
    for step, value in zip(applies, raw, strict=True):
        names = [value] if isinstance(value, str) else value
        assert isinstance(step.action, Apply)
        entries.update(zip(names, step.action.files, strict=True))
    for entry in entries:
        if Path(entry).is_absolute() or ".." in Path(entry).parts:
            raise LabError(
                f"{scenario.path}: apply '{entry}' is outside the scenario's folder",
                f"copy it next to the scenario by hand ({FORMAT_HINT})",
            )
    return entries


def _rewrite(text: str, name: str, renamed: dict[str, str]) -> str:
    """`name:` and every `apply` value (scalar, flow list or block list), by line."""
    lines = text.splitlines(keepends=True)
    result, in_block, block_indent = [], False, 0
    for line in lines:
        body = line.rstrip("\n")
        if body.startswith("# Scenario format:"):  # the course's pointer, replaced by the header
            continue
        if re.match(r"^name:", body):
            result.append(f"name: {name}\n")
            continue
        apply = _APPLY.match(body)
        item = _ITEM.match(body)
        if in_block and item and len(item["lead"]) - len(item["lead"].lstrip()) >= block_indent:
            result.append(f"{item['lead']}{_renamed(item['value'], renamed)}{item['tail']}\n")
            continue
        in_block = False
        if apply:
            if apply["value"].strip():
                value = yaml.safe_load(apply["value"])
                values = [value] if isinstance(value, str) else value
                moved = [renamed.get(str(v), str(v)) for v in values]
                shown = moved[0] if isinstance(value, str) else f"[{', '.join(moved)}]"
                result.append(f"{apply['lead']}{shown}{apply['tail']}\n")
            else:
                in_block, block_indent = True, len(apply["lead"]) - len(apply["lead"].lstrip())
                result.append(line if line.endswith("\n") else line + "\n")
            continue
        result.append(line if line.endswith("\n") else line + "\n")
    return "".join(result)


def _renamed(value: str, renamed: dict[str, str]) -> str:
    plain = yaml.safe_load(value)
    return renamed.get(str(plain), value) if isinstance(plain, str) else value
