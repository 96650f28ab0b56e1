"""`invoke explain` predicts the path each scenario's traced request then observes, on the manifests
applied up to that step (lab.trace.predict, the adapter the trace uses)."""

from __future__ import annotations

import pytest

from lab.scenario.model import Apply, Exec, load_catalog
from lab.trace.live import curl_url
from lab.trace.predict import predicted_verdict

# explain reads the Istio config only: it does not know that a pod opted out of injection
# (sidecar.istio.io/inject: "false" in egress-gateway-enforced's pods.yaml), so it predicts the
# sidecar's path for it; the trace observes no-evidence (no istio-proxy container).
NO_SIDECAR = {("egress-gateway-enforced", "no-sidecar")}


def traced_steps() -> list:
    found = []
    for scenario in load_catalog():
        applied: list = []
        for step in scenario.steps:
            if isinstance(step.action, Apply):
                applied += list(step.action.files)
            paths = [a.value for a in step.assertions if a.kind == "path"]
            if (
                isinstance(step.action, Exec)
                and paths
                and (scenario.name, step.action.target.pod) not in NO_SIDECAR
            ):
                target = step.action.target
                source = target.pod if target.namespace == "default" else f"{target.namespace}/{target.pod}"
                url = curl_url(step.action.command)
                values = (scenario.name, step.name, source, url, list(applied), scenario.registry_only)
                found.append(pytest.param(*values, paths[0].verdict, id=f"{scenario.name}-{len(found)}"))
    return found


@pytest.mark.parametrize(
    ("scenario", "step", "source", "url", "files", "registry_only", "observed"),
    traced_steps(),
)
def test_explain_predicts_what_the_step_observes(
    scenario, step, source, url, files, registry_only, observed
) -> None:
    assert predicted_verdict(files, registry_only, source, url) == observed, f"{scenario}: {step}"
