"""The indexes that keep the analyzer linear give the same answers as the plain scans, and inputs
over the accepted size are refused in one line (the timing itself is bench/analyze_scale.py)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from lab.analyzer import analyze_paths, loading
from lab.analyzer.hosts import covers, overlaps
from lab.analyzer.model import HostIndex
from lab.errors import LabError

HOSTS = [
    "*",
    "*.org",
    "*.wikipedia.org",
    "*.en.wikipedia.org",
    "en.wikipedia.org",
    "wikipedia.org",
    "ikipedia.org",
    "*.pedia.org",
    "edition.cnn.com",
    "*.com",
    "istio-egressgateway.istio-system.svc.cluster.local",
    "*.svc.cluster.local",
]


@pytest.mark.parametrize("query", [*HOSTS, "de.wikipedia.org", "x.y.wikipedia.org", "*.x.org"])
def test_the_host_index_answers_as_the_scan_does(query: str) -> None:
    index = HostIndex((h, h) for h in HOSTS)
    assert index.covering(query) == [h for h in HOSTS if covers(h, query)]
    assert index.overlapping(query) == [h for h in HOSTS if overlaps(h, query)]


def test_the_host_index_keeps_duplicates_in_order() -> None:
    items = list(zip(["a.org", "*.org", "a.org"], itertools.count()))
    assert HostIndex(items).covering("a.org") == [0, 1, 2]


def test_an_input_over_the_size_limit_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "MAX_BYTES", 1024 * 1024)
    (tmp_path / "big.yaml").write_text("# padding\n" * 120_000)
    with pytest.raises(LabError, match=r"larger than the analyzer accepts \(at most 1 MiB of YAML"):
        analyze_paths([tmp_path])


def test_an_input_over_the_document_limit_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "MAX_DOCUMENTS", 3)
    doc = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n{}\n"
    (tmp_path / "many.yaml").write_text("---\n".join(doc.format(i) for i in range(4)))
    with pytest.raises(LabError, match="at most 3 documents per run"):
        analyze_paths([tmp_path])
    monkeypatch.setattr(loading, "MAX_DOCUMENTS", 4)
    assert analyze_paths([tmp_path]) is not None
