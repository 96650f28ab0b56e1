"""JSON Schema of a scenario file (`scenarios/<name>.yaml`).

Strict on purpose: every object rejects unknown keys, so a typo such as `stdoutContain` is a
one-line error naming the file and the field instead of an assertion that silently never runs.
"""

from __future__ import annotations

from typing import Any

from lab.trace.verdict import TRACE_VERDICTS

_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
_TIMEOUT = {"type": "number", "exclusiveMinimum": 0, "maximum": 3600}
_NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"}
_SELECTOR = {"type": "string", "pattern": "^[^\\s]+$"}

_POD_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["namespace", "pod", "container"],
    "properties": {"namespace": _NAME, "pod": _NAME, "container": _NAME},
}

_GATEWAY_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["namespace", "selector"],
    "properties": {"namespace": _NAME, "selector": _SELECTOR},
}

_OBJECT_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "namespace", "name"],
    "properties": {"kind": {"enum": ["Service", "Deployment"]}, "namespace": _NAME, "name": _NAME},
}

_EXEC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["command"],
    "properties": {"command": _STRINGS, "namespace": _NAME, "pod": _NAME, "container": _NAME},
}

# Which way the request went, judged on its trace (lab/trace; verdicts in lab/verdicts.py).
_PATH = {
    "type": "object",
    "additionalProperties": False,
    "required": ["verdict"],
    "properties": {"verdict": {"enum": list(TRACE_VERDICTS)}, "gateway": _GATEWAY_REF},
}

_EXEC_EXPECT = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "exitCode": {"type": "integer", "minimum": 0, "maximum": 255},
        "stdoutContains": _STRINGS,
        "stdoutNotContains": _STRINGS,
        "stdoutMatches": _STRINGS,
        "httpStatus": {"type": "integer", "minimum": 100, "maximum": 599},
        "path": _PATH,
    },
}

_LOGS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["namespace", "container"],
    "oneOf": [{"required": ["selector"]}, {"required": ["pod"]}],
    "properties": {"namespace": _NAME, "selector": _SELECTOR, "pod": _NAME, "container": _NAME},
}

_LOGS_EXPECT = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {"contains": _STRINGS, "notContains": _STRINGS, "matches": _STRINGS},
}

# A file on one of the lab's hosts, read over SSH (testpc's web server log, for instance).
_HOST_LOGS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["node", "path"],
    "properties": {
        "node": {"enum": ["k3s-s", "k3s-w1", "k3s-w2", "testpc"]},
        "path": {"type": "string", "pattern": "^/[^\\s'\"]+$"},
    },
}

# A JSON merge patch on an installed object the scenario lists under `preserve` (so cleanup puts
# it back exactly); a Deployment's rollout is waited for.
_PATCH = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "namespace", "name", "merge"],
    "properties": {
        "kind": {"enum": ["Deployment"]},
        "namespace": _NAME,
        "name": _NAME,
        "merge": {"type": "object", "minProperties": 1},
    },
}

_WAIT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["namespace"],
    "oneOf": [{"required": ["deployment"]}, {"required": ["pods"]}],
    "properties": {"namespace": _NAME, "deployment": _NAME, "pods": _SELECTOR},
}

_STEP = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "timeout": _TIMEOUT,
        "apply": {"oneOf": [{"type": "string", "minLength": 1}, _STRINGS]},
        "wait": _WAIT,
        "exec": _EXEC,
        "logs": _LOGS,
        "hostLogs": _HOST_LOGS,
        "patch": _PATCH,
        "expect": {"type": "object"},
    },
    "oneOf": [
        {"required": ["apply"]},
        {"required": ["wait"]},
        {"required": ["exec"]},
        {"required": ["logs"]},
        {"required": ["hostLogs"]},
        {"required": ["patch"]},
    ],
    "allOf": [
        {
            "if": {"required": ["exec"]},
            "then": {"required": ["expect"], "properties": {"expect": _EXEC_EXPECT}},
        },
        {
            "if": {"required": ["logs"]},
            "then": {"required": ["expect"], "properties": {"expect": _LOGS_EXPECT}},
        },
        {
            "if": {"required": ["hostLogs"]},
            "then": {"required": ["expect"], "properties": {"expect": _LOGS_EXPECT}},
        },
        {
            "if": {"anyOf": [{"required": ["apply"]}, {"required": ["wait"]}, {"required": ["patch"]}]},
            "then": {"not": {"required": ["expect"]}},
        },
    ],
}

SCENARIO_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "lab scenario",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "title", "teaches", "steps"],
    "properties": {
        "name": _NAME,
        "title": {"type": "string", "minLength": 1, "maxLength": 100},
        "order": {"type": "integer", "minimum": 0},
        "teaches": {"type": "string", "minLength": 1},
        "explains": {"type": "string", "minLength": 1},
        "references": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "mesh": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {"outboundTrafficPolicy": {"enum": ["ALLOW_ANY", "REGISTRY_ONLY"]}},
        },
        "expectedFindings": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z]+[0-9]+$"}},
        "preserve": {"type": "array", "items": _OBJECT_REF, "minItems": 1},
        "client": _POD_REF,
        "gateways": {"type": "array", "items": _GATEWAY_REF, "minItems": 1},
        "steps": {"type": "array", "items": _STEP, "minItems": 1},
    },
}
