"""Readiness as the real controllers compute it, in the simulator (no SSH, no CLI)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.labsim import workloads
from tests.labsim.cluster import State
from tests.labsim.config import RELEASE_DIR, Layout, SimConfig

ADDONS = RELEASE_DIR / "samples" / "addons"


def _state(tmp_path: Path) -> State:
    data = {"cluster_id": "t", "objects": {}, "meta": {}, "logs": {}, "counters": {}, "istio": None}
    return State(data, Layout(tmp_path), SimConfig())


def _deployment(file: str) -> dict:
    return next(d for d in yaml.safe_load_all((ADDONS / file).read_text()) if d and d["kind"] == "Deployment")


def _available(view: dict) -> bool:
    return any(c["type"] == "Available" and c["status"] == "True" for c in view["status"]["conditions"])


def test_kiali_is_available_before_its_pod_is_ready_and_grafana_is_not(tmp_path: Path) -> None:
    state = _state(tmp_path)
    for file in ("kiali.yaml", "grafana.yaml"):
        workloads.create_deployment(state, _deployment(file), 60.0)
    kiali, grafana = (state.render(state.get("Deployment", "istio-system", n)) for n in ("kiali", "grafana"))
    pods = {p["metadata"]["labels"]["app.kubernetes.io/name"]: state.render(p) for p in state.objects("Pod")}
    assert not any(c["ready"] for c in pods["kiali"]["status"]["containerStatuses"])
    assert _available(kiali), "maxUnavailable 1 of 1 replica: Available with no pod Ready"
    assert "availableReplicas" not in kiali["status"]
    assert not _available(grafana), "default 25% rounds down to 0: the one pod must be Ready"


def test_max_unavailable_follows_the_deployment_controller() -> None:
    rolling = lambda surge, unavailable: {  # noqa: E731
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
        }
    }
    assert workloads.max_unavailable({}, 1) == 0
    assert workloads.max_unavailable({}, 4) == 1
    assert workloads.max_unavailable(rolling(1, 1), 1) == 1
    assert workloads.max_unavailable(rolling(0, 0), 3) == 1, "both 0 would never progress: 1"
    assert workloads.max_unavailable(rolling("50%", "50%"), 3) == 1
    assert workloads.max_unavailable(rolling(1, 5), 2) == 2, "capped at replicas"
    assert workloads.max_unavailable({"strategy": {"type": "Recreate"}}, 3) == 0
