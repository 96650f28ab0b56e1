"""The code table and the inventory stay in step with the code and with what `up` applies."""

from __future__ import annotations

import re

import yaml

from lab.analyzer.inventory import load_default
from lab.analyzer.rulebook import RULES

from .builders import REPO

ROW = re.compile(r"^\| (?P<code>[A-Z]{3}\d{4}) \| (?P<severity>error|warning|info) \|", re.MULTILINE)


def test_the_code_table_lists_every_code_once_with_its_severity() -> None:
    text = (REPO / "docs" / "analyzer-codes.md").read_text()
    rows = [(m["code"], m["severity"]) for m in ROW.finditer(text)]
    assert sorted(rows) == sorted((code, rule.severity) for code, rule in RULES.items())


def test_the_inventory_has_the_netshoot_pods_that_up_applies() -> None:
    text = (REPO / "manifests" / "lab" / "netshoot.yaml").read_text()
    applied = {
        (d["metadata"]["namespace"], d["metadata"]["name"], tuple(sorted(d["metadata"]["labels"].items())))
        for d in yaml.safe_load_all(text)
        if d and d["kind"] == "Pod"
    }
    inventory = load_default()
    known = {
        (w.namespace, w.name, tuple(sorted(w.labels.items()))) for w in inventory.workloads if w.kind == "Pod"
    }
    assert known == applied
    assert inventory.namespaces["default"] == {"istio-injection": "enabled"}
