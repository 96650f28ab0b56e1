"""No client line: what the cluster suggests (access logging off, or pod annotations that bypass the sidecar)."""

from __future__ import annotations

from typing import Any

from lab.trace.live import Pod, no_evidence_hints


class Cluster:
    def __init__(self, mesh: str, telemetries: list[dict[str, Any]]) -> None:
        self.mesh, self.telemetries = mesh, telemetries

    def kubectl_json(self, *args: str, timeout: float | None = None) -> dict[str, Any]:
        if args[1] == "configmap":
            return {"data": {"mesh": self.mesh}}
        return {"items": self.telemetries}


POD1 = Pod("default", "pod1", "10.42.1.5", True)
LOGGING = {"spec": {"accessLogging": [{"providers": [{"name": "envoy"}]}]}}


def test_access_logging_off_is_said_only_when_neither_mesh_config_nor_telemetry_turns_it_on() -> None:
    off = no_evidence_hints(Cluster("defaultConfig: {}\n", []), POD1)
    by_mesh = no_evidence_hints(Cluster("accessLogFile: /dev/stdout\n", []), POD1)
    by_telemetry = no_evidence_hints(Cluster("defaultConfig: {}\n", [LOGGING]), POD1)

    assert off == ["access logging is off: no meshConfig.accessLogFile and no Telemetry with accessLogging"]
    assert by_mesh == by_telemetry == []


def test_annotations_that_send_traffic_around_the_sidecar_are_named() -> None:
    pod = Pod(
        "default",
        "pod1",
        "10.42.1.5",
        True,
        annotations=(
            ("traffic.sidecar.istio.io/excludeOutboundIPRanges", "185.15.59.0/24"),
            ("traffic.sidecar.istio.io/includeOutboundIPRanges", "*"),
            ("kubectl.kubernetes.io/default-container", "netshoot"),
        ),
    )

    hints = no_evidence_hints(Cluster("accessLogFile: /dev/stdout\n", []), pod)

    assert hints == [
        "default/pod1 has traffic.sidecar.istio.io/excludeOutboundIPRanges='185.15.59.0/24': "
        "that traffic may bypass the sidecar"
    ]
