"""How an EnvoyFilter's MERGE changes the generated config, for the tests that run a real Envoy."""

from __future__ import annotations

import copy
from typing import Any


def merged(base: Any, patch: Any) -> Any:
    """Proto merge as Istio's MERGE does it for these fields: maps merge, scalars replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: merged(base.get(k), v) for k, v in patch.items()}}
    return copy.deepcopy(patch)
