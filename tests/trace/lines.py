"""Access-log lines in the shapes real proxies write, for the trace's unit tests.

Shapes, field for field:
- DEFAULT: Istio 1.23's default TEXT format, `EnvoyTextLogFormat` in istio/istio
  pilot/pkg/model/telemetry_logging.go at tag 1.23.2:
  [START_TIME] "METHOD PATH PROTOCOL" CODE FLAGS DETAILS TERMINATION "TRANSPORT_FAILURE" RX TX DURATION
  UPSTREAM_SERVICE_TIME "XFF" "USER_AGENT" "REQUEST_ID" "AUTHORITY" "UPSTREAM_HOST" UPSTREAM_CLUSTER_RAW
  UPSTREAM_LOCAL DOWNSTREAM_LOCAL DOWNSTREAM_REMOTE SNI ROUTE
  A TCP/TLS connection prints `"- - -" 0` (Envoy docs, access log usage: HTTP-only operators are `-`
  on TCP); START_TIME is Envoy's default, RFC 3339 in milliseconds.
- INTERNAL: the internal listener's logger of manifests/egress-sni/envoyfilter.yaml (its inline_string).
- Sidecar listener behaviour (istio/istio 1.23.2 pilot/pkg/networking/core/listener.go and
  listener_builder.go): without a ServiceEntry on port 443 no `0.0.0.0_443` listener with tls_inspector
  exists, TLS falls to virtualOutbound and the SNI is `-`; REGISTRY_ONLY answers plain HTTP with the
  `block_all` route's 502 direct_response (pilot/pkg/networking/core/httproute.go, BlockAllRouteName)
  and TLS with BlackHoleCluster.
- PROXY_OWN: pilot-agent's own log (istio/istio pkg/log, `<RFC3339>\\t<level>\\t<message>`) and Envoy's
  log as pilot-agent configures it (`--log-format %Y-%m-%dT%T.%fZ\\t%l\\tenvoy %n %g:%#\\t%v\\tthread=%t`,
  pkg/envoy/agent.go / proxy.go).
Addresses: pod IPs from k3s's default cluster CIDR 10.42.0.0/16; 185.15.59.224 is en/de.wikipedia.org
and www.wikimedia.org (one Wikimedia front end serves them all).
"""

from __future__ import annotations

POD1, POD2, SNI_GW, DEMO_GW = "10.42.1.5", "10.42.2.6", "10.42.2.9", "10.42.0.7"
WIKI, CNN, GOOGLE = "185.15.59.224", "151.101.3.5", "142.250.196.100"
SNI_GW_FQDN = "istio-egressgateway-sni.istio-egress.svc.cluster.local"
DEMO_GW_FQDN = "istio-egressgateway.istio-system.svc.cluster.local"


def tcp(
    when: str,
    upstream_host: str,
    cluster: str,
    upstream_local: str,
    downstream_local: str,
    downstream_remote: str,
    sni: str = "-",
    flags: str = "-",
    rx: int = 839,
    tx: int = 5123,
    duration: int = 118,
) -> str:
    """DEFAULT shape of a TCP/TLS connection."""
    return (
        f'[{when}] "- - -" 0 {flags} - - "-" {rx} {tx} {duration} - "-" "-" "-" "-" "{upstream_host}" '
        f"{cluster} {upstream_local} {downstream_local} {downstream_remote} {sni} -"
    )


def http(
    when: str,
    request: str,
    code: int,
    request_id: str,
    authority: str,
    upstream_host: str,
    cluster: str,
    upstream_local: str,
    downstream_local: str,
    downstream_remote: str,
    flags: str = "-",
    details: str = "via_upstream",
    xff: str = "-",
    route: str = "-",
) -> str:
    """DEFAULT shape of an HTTP request."""
    return (
        f'[{when}] "{request}" {code} {flags} {details} - "-" 0 178 95 94 "{xff}" "curl/8.7.1" '
        f'"{request_id}" "{authority}" "{upstream_host}" {cluster} {upstream_local} {downstream_local} '
        f"{downstream_remote} - {route}"
    )


def internal(when: str, upstream_host: str, upstream_local: str, sni: str, flags: str = "-") -> str:
    """INTERNAL shape: manifests/egress-sni/envoyfilter.yaml's sni_listener logger."""
    return (
        f'[{when}] "- - -" 0 {flags} - - "-" 839 5123 112 - "-" "-" "-" "-" "{upstream_host}" '
        f"dynamic_forward_proxy_cluster {upstream_local} envoy://sni_listener/ "
        f"envoy://internal_client_address/ {sni} -"
    )


STARTUP = [  # PROXY_OWN
    '2024-10-08T10:30:48.660212Z\tinfo\tFLAG: --concurrency="2"',
    "2024-10-08T10:30:48.661Z\tinfo\tVersion 1.23.2-2d1ae4c1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7-Clean",
    "2024-10-08T10:30:49.512345Z\twarning\tenvoy main external/envoy/source/server/server.cc:843\t"
    "Usage of the deprecated runtime key overload.global_downstream_max_connections\tthread=15",
    "2024-10-08T10:30:49.601Z\tinfo\tenvoy upstream external/envoy/source/common/upstream/cds_api_helper.cc:32\t"
    "cds: add 23 cluster(s), remove 2 cluster(s)\tthread=15",
    "2024-10-08T10:30:50.123456Z\tinfo\tEnvoy proxy is ready",
]

# --- one request each, the client's line and the gateway's lines ---------------------------------
T = "2024-10-08T10:31:02.118Z"

# The study notes' config: no ServiceEntry on 443, so no SNI; only the IP names the upstream.
PASSTHROUGH_NO_SNI = tcp(
    T, f"{WIKI}:443", "PassthroughCluster", f"{POD1}:48152", f"{WIKI}:443", f"{POD1}:48140"
)
# egress-sni: pod1 -> SNI gateway (mTLS) -> sni_listener -> en.wikipedia.org
SNI_CLIENT = tcp(
    T,
    f"{SNI_GW}:8443",
    f"outbound|443|wildcard|{SNI_GW_FQDN}",
    f"{POD1}:53308",
    f"{WIKI}:443",
    f"{POD1}:48160",
    sni="en.wikipedia.org",
    duration=131,
)
SNI_GATEWAY = tcp(
    "2024-10-08T10:31:02.121Z",
    "envoy://sni_listener/",
    "sni_cluster",
    "envoy://internal_client_address/",
    f"{SNI_GW}:8443",
    f"{POD1}:53308",
    sni=f"outbound_.443_.wildcard_.{SNI_GW_FQDN}",
    duration=125,
)
SNI_INTERNAL = internal("2024-10-08T10:31:02.122Z", f"{WIKI}:443", f"{SNI_GW}:40312", "en.wikipedia.org")
# Another client (pod2) to en.wikipedia.org through the same gateway a moment later: a decoy.
DECOY_GATEWAY = tcp(
    "2024-10-08T10:31:02.130Z",
    "envoy://sni_listener/",
    "sni_cluster",
    "envoy://internal_client_address/",
    f"{SNI_GW}:8443",
    f"{POD2}:41000",
    sni=f"outbound_.443_.wildcard_.{SNI_GW_FQDN}",
    duration=400,
)
DECOY_INTERNAL = internal("2024-10-08T10:31:02.131Z", f"{WIKI}:443", f"{SNI_GW}:40320", "en.wikipedia.org")
# www.wikimedia.org passthrough while a 443 ServiceEntry exists: SNI present; same IP as Wikipedia.
WIKIMEDIA_PASSTHROUGH = tcp(
    "2024-10-08T10:31:05.004Z",
    f"{WIKI}:443",
    "PassthroughCluster",
    f"{POD1}:48200",
    f"{WIKI}:443",
    f"{POD1}:48190",
    sni="www.wikimedia.org",
)
# REGISTRY_ONLY refusals.
BLACKHOLE_TLS = tcp(
    T, "-", "BlackHoleCluster", "-", f"{CNN}:443", f"{POD1}:40300", flags="UH", rx=0, tx=0, duration=0
)
BLOCK_ALL_HTTP = http(
    T,
    "GET /politics HTTP/1.1",
    502,
    "5a9e2f0c-1d6b-4b7e-9c51-3f0a8d2e4b11",
    "edition.cnn.com",
    "-",
    "-",
    "-",
    f"{CNN}:80",
    f"{POD1}:40222",
    details="direct_response",
    route="block_all",
)
# A ServiceEntry host straight from the sidecar.
DIRECT_GOOGLE = tcp(
    T,
    f"{GOOGLE}:443",
    "outbound|443||www.google.com",
    f"{POD1}:58112",
    f"{GOOGLE}:443",
    f"{POD1}:58100",
    sni="www.google.com",
)
# egress-gateway-http: HTTP/1.1 from the app, HTTP/2 (Service port name http2) to the demo gateway's 8080.
RID = "6d1c4b8e-2f3a-4c5d-9e7f-0a1b2c3d4e5f"
HTTP_CLIENT = http(
    T,
    "GET /politics HTTP/1.1",
    301,
    RID,
    "edition.cnn.com",
    f"{DEMO_GW}:8080",
    f"outbound|80|cnn|{DEMO_GW_FQDN}",
    f"{POD1}:37224",
    f"{CNN}:80",
    f"{POD1}:52110",
)
HTTP_GATEWAY = http(
    "2024-10-08T10:31:02.120Z",
    "GET /politics HTTP/2",
    301,
    RID,
    "edition.cnn.com",
    f"{CNN}:80",
    "outbound|80||edition.cnn.com",
    f"{DEMO_GW}:52930",
    f"{DEMO_GW}:8080",
    f"{POD1}:37224",
    xff=POD1,
)
HTTP_GATEWAY_FAILED = http(
    "2024-10-08T10:31:02.119Z",
    "GET /politics HTTP/2",
    503,
    RID,
    "edition.cnn.com",
    f"{CNN}:80",
    "outbound|80||edition.cnn.com",
    f"{DEMO_GW}:52920",
    f"{DEMO_GW}:8080",
    f"{POD1}:37224",
    xff=POD1,
    flags="URX,UF",
    details="upstream_reset_before_response_started{connection_failure}",
)
# Inbound traffic to pod1 (a kubelet probe through the sidecar): not an outbound request.
INBOUND = http(
    T,
    "GET /healthz HTTP/1.1",
    200,
    "0b9f6c1e-7a2d-4e3f-8b4c-5d6e7f8a9b0c",
    f"{POD1}:8080",
    f"{POD1}:8080",
    "inbound|8080||",
    "127.0.0.6:51234",
    f"{POD1}:8080",
    "10.42.1.1:40000",
    route="default",
)
