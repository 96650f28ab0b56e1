"""The add-ons step: the four the lab promises, by file, and Kiali's pod Ready before `up` says so."""

from __future__ import annotations

from tests.e2e.conftest import cli_for
from tests.labsim.sim import LabSim


def _pod_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"])


def test_addons_step_waits_for_the_kiali_pod_not_its_deployment(labsim_factory) -> None:
    sim: LabSim = labsim_factory(pod_ready_delay=6.0)
    up = cli_for(sim)("up", "--until", "addons")
    assert up.returncode == 0, up.stdout + up.stderr
    kiali = [p for p in sim.objects("Pod", "istio-system") if p["metadata"]["name"].startswith("kiali-")]
    assert kiali and all(_pod_ready(p) for p in kiali), "up went on before Kiali's pod was Ready"
    applies = [e["argv"] for e in sim.commands("kubectl") if e["argv"][1:2] == ["apply"]]
    files = [a for argv in applies for a in argv if "samples/addons" in a]
    assert [f.rsplit("/", 1)[-1] for f in files] == [
        "kiali.yaml",
        "prometheus.yaml",
        "grafana.yaml",
        "jaeger.yaml",
    ]
    assert not [o for o in sim.objects("StatefulSet", "istio-system") if o["metadata"]["name"] == "loki"]
