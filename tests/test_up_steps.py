"""Steps' `done` checks and the pipeline's graph, without a simulator."""

from __future__ import annotations

from types import SimpleNamespace

from lab.steps import NEEDS, STEP_NAMES
from lab.steps.addons import ADDONS, Addons


def _condition(kind: str, status: str) -> dict:
    return {"status": {"conditions": [{"type": kind, "status": status}]}}


def _context(items: list[dict]) -> SimpleNamespace:
    cluster = SimpleNamespace(kubectl_json=lambda *args: {"items": items})
    state = SimpleNamespace(facts={}, ssh_cidr="203.0.113.7/32")
    return SimpleNamespace(cluster=cluster, lab=SimpleNamespace(state=state), seen={})


def _items(kiali_pod_ready: str) -> list[dict]:
    deployments = [
        {"kind": "Deployment", "metadata": {"name": name}, **_condition("Available", "True")}
        for name in ADDONS
    ]
    pod = {
        "kind": "Pod",
        "metadata": {"name": "kiali-x", "labels": {"app.kubernetes.io/name": "kiali"}},
        **_condition("Ready", kiali_pod_ready),
    }
    service = {
        "kind": "Service",
        "metadata": {"name": "kiali"},
        "spec": {"type": "NodePort", "ports": [{"nodePort": 30105}]},
    }
    return [*deployments, pod, service]


def test_addons_are_not_done_while_the_kiali_pod_is_not_ready() -> None:
    assert Addons().done(_context(_items("False"))) is False, "an Available Kiali Deployment is not enough"
    ctx = _context(_items("True"))
    assert Addons().done(ctx) is True
    assert ctx.lab.state.facts == {}, "a done check only reads"
    Addons().record(ctx)
    assert ctx.lab.state.facts["kiali_node_port"] == 30105


def test_every_step_needs_only_earlier_steps() -> None:
    assert set(NEEDS) == set(STEP_NAMES)
    for name, needs in NEEDS.items():
        assert all(STEP_NAMES.index(need) < STEP_NAMES.index(name) for need in needs), name
