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


def _pod(name: str, node: str, *images: str) -> dict:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": containers},
    }


def test_a_pod_waits_for_its_images_on_its_own_node_only(tmp_path: Path) -> None:
    state = _state(tmp_path)
    state.config.delays.image_pull = 10.0  # seconds per 100 MB
    netshoot = "nicolaka/netshoot:v0.13"
    ready_at = workloads.pull(state, "k3s-w1", netshoot)
    assert ready_at == state.now + 19.0, "190 MB at 10 s per 100 MB"
    assert workloads.pull(state, "k3s-w1", "docker.io/nicolaka/netshoot:v0.13") == ready_at, "the same pull"
    workloads.create_pod(state, _pod("there", "k3s-w1", netshoot), 5.0, None, pulls=True)
    workloads.create_pod(state, _pod("elsewhere", "k3s-w2", netshoot), 5.0, None, pulls=True)
    there, elsewhere = (
        state.meta(state.get("Pod", "default", n))["ready_at"] for n in ("there", "elsewhere")
    )
    assert there == ready_at + 5.0
    assert elsewhere == state.now + 19.0 + 5.0
    state.now += 30
    workloads.create_pod(state, _pod("later", "k3s-w1", netshoot), 5.0, None, pulls=True)
    assert state.meta(state.get("Pod", "default", "later"))["ready_at"] == state.now + 5.0, (
        "no pull: it is there"
    )


def test_image_names_normalize_as_containerd_does() -> None:
    assert workloads.normalize_image("nicolaka/netshoot:v0.13") == "docker.io/nicolaka/netshoot:v0.13"
    assert workloads.normalize_image("busybox") == "docker.io/library/busybox:latest"
    assert workloads.normalize_image("quay.io/kiali/kiali:v1.87") == "quay.io/kiali/kiali:v1.87"
