"""The predicted verdict of one request, for callers that compare it with what they observed
(`invoke trace`): the same path `invoke explain` prints, reduced to a lab.verdicts name."""

from __future__ import annotations

from typing import Any

from lab.analyzer.engine import build_config
from lab.analyzer.explain import explain
from lab.analyzer.loading import Document


def predict(
    documents: list[Any],
    host: str,
    port: int | None = None,
    scheme: str = "https",
    client: str = "pod1",
    *,
    registry_only: bool = False,
) -> str:
    """The verdict (egress-gateway, passthrough, direct, blackhole or dropped) of a request from
    `client` (`[namespace/]name`) to scheme://host:port with these manifests applied to the lab.

    `documents` are parsed YAML documents (dicts); the ones the analyzer leaves out (refused by
    the webhook, malformed) are left out here too, as the API server would. Raises LabError for
    an unknown client or a bad URL.
    """
    docs = [Document(d, f"document {i}") for i, d in enumerate(documents, start=1) if d is not None]
    config, _ = build_config(docs, registry_only=registry_only)
    url = f"{scheme}://{host}" + (f":{port}" if port else "") + "/"
    return explain(config, client, url).verdict
