"""Reading manifest files and folders into YAML documents, reporting what cannot be read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.analyzer.findings import Finding
from lab.analyzer.resources import Unnamed
from lab.analyzer.rulebook import input_rule
from lab.errors import LabError

UNPARSEABLE = input_rule("LAB0001", "error", "YAML does not parse")
NOT_TEXT = input_rule("LAB0002", "error", "file is not text")
EMPTY = input_rule("LAB0003", "warning", "file has no documents")

MANIFEST_SUFFIXES = (".yaml", ".yml")
# What one run accepts: ten times bench/analyze_scale.py's largest input (16k documents, 7 MB,
# several seconds); beyond that the run would take minutes, so it is refused up front.
MAX_BYTES = 64 * 1024 * 1024
MAX_DOCUMENTS = 160_000
# libyaml's safe loader when PyYAML has it (same documents, several times faster), else the pure one.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Document:
    data: Any
    source: str  # file#index (1-based), to say where a finding came from


def manifest_files(paths: list[Path]) -> list[Path]:
    """The files to read: each file given, and the YAML files under each folder given."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in MANIFEST_SUFFIXES)
            if not found:
                raise LabError(f"{path}: no .yaml or .yml files in this folder")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise LabError(f"{path}: no such file or folder")
    return files


def load_paths(paths: list[Path]) -> tuple[list[Document], list[Finding]]:
    documents: list[Document] = []
    findings: list[Finding] = []
    total = 0
    for path in manifest_files(paths):
        try:
            total += path.stat().st_size
            if total > MAX_BYTES:
                raise too_big(f"{MAX_BYTES // (1024 * 1024)} MiB of YAML")
            raw = path.read_bytes()
        except OSError as error:
            raise LabError(f"{path}: cannot read: {error.strerror}") from None
        docs, problems = parse_text(raw, str(path))
        documents += docs
        findings += problems
        if len(documents) > MAX_DOCUMENTS:
            raise too_big(f"{MAX_DOCUMENTS:,} documents")
    return documents, findings


def too_big(limit: str) -> LabError:
    return LabError(
        f"the input is larger than the analyzer accepts (at most {limit} per run)",
        "analyze the manifests in smaller groups, e.g. one folder at a time",
    )


def parse_text(raw: bytes, source: str) -> tuple[list[Document], list[Finding]]:
    """The documents of one multi-document YAML file, and what stops it being read."""
    where = Unnamed("File", "", source)
    try:
        if b"\x00" in raw:
            raise UnicodeDecodeError("utf-8", raw, raw.index(b"\x00"), len(raw), "NUL byte")
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [NOT_TEXT(where, "binary data, not UTF-8 YAML", "pass a manifest file")]
    documents: list[Document] = []
    try:
        for index, data in enumerate(yaml.load_all(text, Loader=_LOADER), start=1):
            documents += _expand(data, f"{source}#{index}")
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        hint = "fix the YAML; kubectl would stop at this document"
        return documents, [UNPARSEABLE(where, f"YAML does not parse{line}: {problem}", hint)]
    if not documents:
        return [], [EMPTY(where, "no YAML documents in this file", "remove it or add manifests")]
    return documents, []


def _expand(data: Any, source: str) -> list[Document]:
    """Skip empty documents; open `kind: List` (as `kubectl get -o yaml` writes) into its items."""
    if data is None:
        return []
    if isinstance(data, dict) and str(data.get("kind", "")).endswith("List"):
        items = data.get("items")
        if isinstance(items, list):
            return [Document(item, f"{source}.items[{i}]") for i, item in enumerate(items)]
    return [Document(data, source)]
