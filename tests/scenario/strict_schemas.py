"""Strict validation of manifests the way the API server would judge them, without a cluster.

Istio kinds: the openAPIV3Schema of the served version from Istio 1.23.2's CRDs, made strict
(an object that declares properties rejects unknown ones, unless the schema preserves unknown
fields), as the API server prunes or rejects them. CEL rules (x-kubernetes-validations) are not
evaluated. Core kinds: kubernetes-validate's Kubernetes 1.30 schemas in strict mode.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "tests" / "data" / "istio-1.23.2-crds.yaml"  # source and licence: tests/data/README.md
KUBERNETES = "1.30.0"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class Invalid(Exception):
    """One line: document, field path, reason."""


@cache
def istio_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict schema, for every served version of every Istio CRD."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for crd in yaml.safe_load_all(CRDS.read_text()):
        if not crd:
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schemas[(f"{group}/{version['name']}", kind)] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def strict(schema: Any) -> Any:
    """A copy where every object that declares properties rejects the ones it does not declare."""
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return schema


def validate(doc: dict[str, Any], where: str) -> str:
    """Validate one document; return how it was judged ("istio" or "core"), or raise Invalid."""
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    if key in istio_schemas():
        _validate_metadata(doc, where)
        extra = sorted(set(doc) - {"apiVersion", "kind", "metadata", "spec"})
        if extra:
            raise Invalid(f"{where}: unknown top-level field(s) {extra}")
        body = {k: v for k, v in doc.items() if k == "spec"}
        errors = list(Draft7Validator(istio_schemas()[key]).iter_errors(body))
        if errors:
            error = best_match(errors)
            path = ".".join(str(p) for p in error.absolute_path)
            raise Invalid(f"{where}: {path}: {error.message}")
        return "istio"
    if key[0].endswith(".istio.io") or key[0].startswith(("networking.istio.io", "telemetry.istio.io")):
        raise Invalid(f"{where}: {key[0]} {key[1]} is not served by Istio 1.23.2")
    try:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(p) for p in error.path)
        raise Invalid(f"{where}: {path}: {error.message}") from None
    except kubernetes_validate.SchemaNotFoundError:
        raise Invalid(f"{where}: no Kubernetes {KUBERNETES} schema for {key[0]} {key[1]}") from None
    return "core"


def _validate_metadata(doc: dict[str, Any], where: str) -> None:
    metadata = doc.get("metadata") or {}
    unknown = sorted(set(metadata) - {"name", "namespace", "labels", "annotations"})
    if unknown:
        raise Invalid(f"{where}: metadata: unexpected field(s) {unknown}")
    for field in ("name", "namespace"):
        value = metadata.get(field)
        if (field == "name" or value is not None) and not (isinstance(value, str) and _NAME.match(value)):
            raise Invalid(f"{where}: metadata.{field}: {value!r} is not a DNS-1123 name")
    for field in ("labels", "annotations"):
        values = metadata.get(field) or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
            raise Invalid(f"{where}: metadata.{field}: keys and values must be strings")
