"""The answers to "which way did this request go?", shared by `invoke trace` (observed, from the
proxies' access logs) and `invoke explain` (predicted, from the config), so the two can be compared."""

from __future__ import annotations

from typing import Final

EGRESS_GATEWAY: Final = "egress-gateway"
PASSTHROUGH: Final = "passthrough"
DIRECT: Final = "direct"
BLACKHOLE: Final = "blackhole"
NO_EVIDENCE: Final = "no-evidence"
DROPPED: Final = "dropped"

MEANINGS: Final[dict[str, str]] = {
    EGRESS_GATEWAY: "the client's sidecar sent it to an egress gateway, which sent it on to the external host",
    PASSTHROUGH: "it left the client's sidecar through PassthroughCluster; no gateway saw it",
    DIRECT: "it left the client's sidecar through a ServiceEntry's outbound cluster, without a gateway",
    BLACKHOLE: "the mesh refused it (BlackHoleCluster, or the block_all route under REGISTRY_ONLY)",
    NO_EVIDENCE: "no access-log line of the client's sidecar belongs to this request",
    DROPPED: "the path stops inside the mesh (a loop, a missing route or listener)",
}

# What `invoke trace` can observe; `dropped` is a prediction only (the trace sees its symptoms:
# a gateway line with an error flag, or no gateway line at all).
OBSERVED: Final = (EGRESS_GATEWAY, PASSTHROUGH, DIRECT, BLACKHOLE, NO_EVIDENCE)
PREDICTED: Final = (EGRESS_GATEWAY, PASSTHROUGH, DIRECT, BLACKHOLE, DROPPED)
