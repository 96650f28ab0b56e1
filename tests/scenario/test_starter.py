"""`scenario new`: the copy keeps the source's text and points every `apply` at its own manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.errors import LabError, UsageError
from lab.scenario.model import Apply, load_scenario_file
from lab.scenario.starter import new_scenario

SOURCE = """\
name: mine
title: "a scenario of mine"  # with a comment
teaches: |
  name: not the top-level key
steps:
  - name: one file
    apply: a.yaml
  - name: a flow list
    apply: [b.yaml, sub/c.yaml]  # kept
  - name: a block list
    apply:
      - a.yaml
      - sub/c.yaml
  - exec: {command: [curl, -sS, "http://x/"]}
    expect: {exitCode: 0}
"""
MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: default}\n"


def test_a_copy_of_a_file_of_ones_own_rewrites_name_and_every_form_of_apply(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    for name in ("a.yaml", "b.yaml", "sub/c.yaml"):
        (source / name).write_text(MANIFEST + f"# {name}\n")
    (source / "mine.yaml").write_text(SOURCE)
    target = tmp_path / "out"
    target.mkdir()

    path = new_scenario("copy", str(source / "mine.yaml"), target)

    text = path.read_text()
    assert "name: copy\n" in text and "name: mine" not in text
    assert "  name: not the top-level key" in text, "text blocks are left alone"
    assert 'title: "a scenario of mine"  # with a comment' in text
    assert "apply: [copy/b.yaml, copy/sub/c.yaml]  # kept" in text
    assert "      - copy/a.yaml\n      - copy/sub/c.yaml\n" in text
    scenario = load_scenario_file(path)
    files = [f for s in scenario.steps if isinstance(s.action, Apply) for f in s.action.files]
    assert files == [target / "copy" / n for n in ("a.yaml", "b.yaml", "sub/c.yaml", "a.yaml", "sub/c.yaml")]
    assert (target / "copy" / "sub" / "c.yaml").read_text().endswith("# sub/c.yaml\n")


def test_new_refuses_a_bad_name_an_existing_file_and_an_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not valid"):
        new_scenario("My_Scenario", None, tmp_path)
    (tmp_path / "taken.yaml").write_text("")
    with pytest.raises(UsageError, match="already exists"):
        new_scenario("taken", None, tmp_path)
    with pytest.raises(LabError, match="unknown scenario 'nope'"):
        new_scenario("fresh", "nope", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.yaml"], "nothing half-written"


def test_without_from_it_starts_from_a_course_scenario_that_loads(tmp_path: Path) -> None:
    path = new_scenario("start", None, tmp_path)
    scenario = load_scenario_file(path)
    assert scenario.name == "start" and scenario.manifests
    assert all(f.parent == tmp_path / "start" for f in scenario.manifests)
    assert path.read_text().startswith("# Written by `invoke scenario new start --from ")
