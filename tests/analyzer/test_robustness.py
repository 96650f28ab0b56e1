"""Mangled manifests: every field replaced by values of the wrong type, none may crash a check."""

from __future__ import annotations

import contextlib
import copy
import random
from typing import Any

import pytest
import yaml

from lab.analyzer import analyze_documents
from lab.analyzer.engine import build_config
from lab.analyzer.explain import explain
from lab.analyzer.loading import Document
from lab.errors import LabError

from .builders import FIXTURES

ODD_VALUES: list[Any] = [None, 7, True, "x", [], {}, [1, "a"], {"a": {"b": 1}}, [{"name": 3}]]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def replaced(docs: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    docs = copy.deepcopy(docs)
    doc = rng.choice(docs)
    path = rng.choice(paths(doc)[1:])
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    return docs


@pytest.mark.parametrize("folder", ["study-notes-broken", "egress-sni", "egress-gateway-http"])
def test_no_check_crashes_on_mangled_fields(folder: str) -> None:
    docs = [
        d for p in sorted((FIXTURES / folder).glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d
    ]
    rng = random.Random(folder)
    for _ in range(150):
        mangled = replaced(docs, rng)
        findings = analyze_documents(mangled)
        assert not [f for f in findings if f.code == "LAB0010"], findings
        config, _ = build_config([Document(d, "test") for d in mangled])
        for url in ("https://en.wikipedia.org/", "http://edition.cnn.com/"):
            with contextlib.suppress(LabError):
                explain(config, "pod1", url)
