"""Runs every rule over the model built from the documents and the lab inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.analyzer import rules, webhook  # noqa: F401  (rules: registers the rules)
from lab.analyzer.findings import Finding, sort_key
from lab.analyzer.inventory import Inventory, load_default
from lab.analyzer.loading import Document, load_paths
from lab.analyzer.model import Config
from lab.analyzer.resources import Resource, Unnamed, to_resource
from lab.analyzer.rulebook import RULES, input_rule

CHECK_FAILED = input_rule("LAB0010", "warning", "a check could not run")


def build_config(
    documents: list[Document], *, registry_only: bool = False, inventory: Inventory | None = None
) -> tuple[Config, list[Finding]]:
    """The model of the lab with the manifests applied, and the findings about the documents."""
    inventory = inventory or load_default()
    if registry_only:
        inventory = inventory.with_policy(registry_only=True)
    resources: list[Resource] = []
    findings: list[Finding] = []
    for doc in documents:
        resource, problems = to_resource(doc.data, doc.source)
        findings += problems
        if resource is None:
            continue
        refused = webhook.refusals(resource)
        if refused:  # the API server never stores it: leave it out of the model
            message = "the validating webhook refuses it: " + "; ".join(refused)
            hint = "fix it as the message says; `kubectl apply` would fail with this text"
            findings.append(webhook.REFUSED(resource, message, hint))
            continue
        resources.append(resource)
    return Config(inventory, resources), findings


def run_rules(config: Config) -> list[Finding]:
    findings: list[Finding] = []
    for rule in RULES.values():
        if rule.check is None:
            continue
        try:
            findings += list(rule.check(config, rule))
        except Exception as error:  # a bug in one check must not hide the other findings
            message = f"{rule.code} ({rule.title}) failed: {type(error).__name__}: {error}"
            findings.append(
                CHECK_FAILED(Unnamed("Check", "", rule.code), message, "please report this input")
            )
    return findings


def analyze(
    documents: list[Document], *, registry_only: bool = False, inventory: Inventory | None = None
) -> list[Finding]:
    config, findings = build_config(documents, registry_only=registry_only, inventory=inventory)
    return finalize(findings + run_rules(config))


def finalize(findings: list[Finding]) -> list[Finding]:
    return sorted(dict.fromkeys(findings), key=sort_key)


def analyze_documents(
    docs: list[Any], *, registry_only: bool = False, inventory: Inventory | None = None
) -> list[Finding]:
    """Analyze already-parsed YAML documents (one dict each) against the lab."""
    documents = [Document(d, f"document {i}") for i, d in enumerate(docs, start=1) if d is not None]
    return analyze(documents, registry_only=registry_only, inventory=inventory)


def analyze_paths(
    paths: list[Path], *, registry_only: bool = False, inventory: Inventory | None = None
) -> list[Finding]:
    """Analyze manifest files and folders. Raises LabError for paths that do not exist."""
    documents, findings = load_paths([Path(p) for p in paths])
    return finalize(findings + analyze(documents, registry_only=registry_only, inventory=inventory))
