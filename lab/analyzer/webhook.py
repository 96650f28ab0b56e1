"""What Istio's validating webhook refuses at apply time, in its own words.

istiod's webhook runs the validation functions of istio/istio@1.23.2:pkg/config/validation/
validation.go (ValidateServiceEntry, ValidateGateway, ValidateVirtualService,
ValidateDestinationRule) and envoyfilter/envoyfilter.go; `kubectl apply` then fails with `admission webhook
"validation.istio.io" denied the request: configuration is invalid: <message>`, and nothing of
the object reaches istiod. `istioctl analyze` 1.23.2 reports the same errors as IST0106
(pkg/config/analysis/analyzers/schema/validation.go), so the findings use that code.

Only the checks an egress configuration can trip are here; each message is the Go format string
of the check, filled in. A refused object is left out of the model: explain then traces the
config as the cluster would hold it.
"""

from __future__ import annotations

import re
from typing import Any

from lab.analyzer.resources import Resource
from lab.analyzer.rulebook import input_rule

REFUSED = input_rule("IST0106", "error", "the validating webhook refuses the object")

# k8s.io/apimachinery validation IsDNS1123Label / IsWildcardDNS1123Label, as
# istio/istio@1.23.2:pkg/config/labels and pkg/config/validation/agent (ValidateWildcardDomain) use.
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_WILDCARD_LABEL = re.compile(r"^(\*|\*?[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")
_PROTOCOLS = {"HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "REDIS", "MYSQL", "TCP", "TLS", "UDP"}
_TLS_PROTOCOLS = {"HTTPS", "TLS"}
_HTTP_PROTOCOLS = {"HTTP", "HTTP2", "GRPC", "GRPC-WEB"}


def refusals(resource: Resource) -> list[str]:
    """The webhook's error messages for this object (empty: it is admitted)."""
    check = _CHECKS.get(resource.kind)
    return check(resource.spec, resource) if check else []


def _labels_error(domain: str) -> str | None:
    """agent.ValidateDNS1123Labels (pkg/config/validation/agent/validation.go), its wording."""
    parts = domain.split(".")
    if parts[-1].isdigit():
        return f'domain name "{domain}" invalid (top level domain "{parts[-1]}" cannot be all-numeric)'
    for i, label in enumerate(parts):
        if i == len(parts) - 1 and label == "":
            return None
        if not (_LABEL.match(label) and len(label) <= 63):
            return f'domain name "{domain}" invalid (label "{label}" invalid)'
    return None


def _is_fqdn(name: str) -> bool:
    """agent.ValidateFQDN: not empty, at most 255 characters, DNS-1123 labels."""
    return 0 < len(name) <= 255 and _labels_error(name) is None


def _wildcard_domain_error(name: str) -> str | None:
    """agent.ValidateWildcardDomain: a wildcard is allowed in the first label only."""
    if not name:
        return "empty domain name not allowed"
    if len(name) > 255:
        return f'domain name "{name}" too long (max 255)'
    first, dot, rest = name.partition(".")
    if not _WILDCARD_LABEL.match(first):
        return f'domain name "{name}" invalid (label "{first}" invalid)'
    return _labels_error(rest) if dot else None


def _service_entry(spec: dict[str, Any], _: Resource) -> list[str]:
    """istio/istio@1.23.2:pkg/config/validation/validation.go ValidateServiceEntry."""
    errors: list[str] = []
    hosts = [str(h) for h in spec.get("hosts") or []]
    resolution = str(spec.get("resolution") or "NONE")
    endpoints = spec.get("endpoints") or []
    if spec.get("workloadSelector") is not None and spec.get("endpoints") is not None:
        errors.append("only one of WorkloadSelector or Endpoints is allowed in Service Entry")
    if not hosts:
        errors.append("service entry must have at least one host")
    for host in hosts:
        if host == "*":
            errors.append(f"invalid host {host}")
        elif problem := _wildcard_domain_error(host):
            errors.append(problem)
    names: set[str] = set()
    numbers: set[int] = set()
    for port in spec.get("ports") or []:
        if not isinstance(port, dict):
            continue
        name, number = str(port.get("name") or ""), port.get("number")
        if name in names:
            errors.append(f'service entry port name "{name}" already defined')
        if number in numbers:
            errors.append(f"service entry port {number} already defined")
        names.add(name)
        numbers.add(number)  # type: ignore[arg-type]
        if not _LABEL.match(name):
            errors.append(f"invalid port name: {name}")
        protocol = str(port.get("protocol") or "")
        if protocol and protocol.upper() not in _PROTOCOLS:
            errors.append(f"unsupported protocol: {protocol}")
    if resolution == "NONE" and endpoints:
        errors.append("no endpoints should be provided for resolution type none")
    if resolution in ("DNS", "DNS_ROUND_ROBIN") and not endpoints:
        # One line per host that is not an FQDN (a wildcard), as the webhook appends them.
        errors += [
            f"hosts must be FQDN if no endpoints are provided for resolution mode {resolution}"
            for h in hosts
            if not _is_fqdn(h)
        ]
    if resolution not in ("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"):
        errors.append(f"unsupported resolution type {resolution}")
    if resolution != "NONE" and len(hosts) > 1:
        protocols = [str(p.get("protocol") or "").upper() for p in spec.get("ports") or [] if isinstance(p, dict)]
        if any(p not in _TLS_PROTOCOLS | _HTTP_PROTOCOLS for p in protocols):
            errors.append("multiple hosts provided with non-HTTP, non-TLS ports")
    return errors


def _gateway(spec: dict[str, Any], resource: Resource) -> list[str]:
    """validation.go ValidateGateway, validateServer, validateServerPort, validateTLSOptions."""
    errors: list[str] = []
    if not _LABEL.match(resource.name):
        errors.append(f'invalid gateway name: "{resource.name}"')
    servers = [s for s in spec.get("servers") or [] if isinstance(s, dict)]
    if not servers:
        errors.append("gateway must have at least one server")
    names: set[str] = set()
    for server in servers:
        port = server.get("port") if isinstance(server.get("port"), dict) else {}
        protocol = str(port.get("protocol") or "").upper()
        name = str(port.get("name") or "")
        tls = server.get("tls")
        if not server.get("hosts"):
            errors.append("server config must contain at least one host")
        if not name:
            errors.append("port name must be set")
        elif name in names:
            errors.append(f"port names in servers must be unique: duplicate name {name}")
        names.add(name)
        if protocol in _TLS_PROTOCOLS and tls is None:
            errors.append("server must have TLS settings for HTTPS/TLS protocols")
        elif protocol in _HTTP_PROTOCOLS and isinstance(tls, dict):
            # only an httpsRedirect (a passthrough-mode tls block without certificates) is allowed
            certs = any(tls.get(k) for k in ("caCertificates", "privateKey", "serverCertificate"))
            if str(tls.get("mode") or "PASSTHROUGH") not in ("PASSTHROUGH", "AUTO_PASSTHROUGH") or certs:
                errors.append("server cannot have TLS settings for plain text HTTP ports")
        elif protocol not in _TLS_PROTOCOLS and protocol not in _HTTP_PROTOCOLS and tls is not None:
            errors.append("server cannot have TLS settings for non HTTPS/TLS ports")
        if isinstance(tls, dict):
            errors += _server_tls(tls)
    return errors


def _server_tls(tls: dict[str, Any]) -> list[str]:
    mode = str(tls.get("mode") or "PASSTHROUGH")
    if mode == "ISTIO_MUTUAL":
        return [
            f"ISTIO_MUTUAL TLS cannot have associated {what}"
            for field, what in (
                ("serverCertificate", "server certificate"),
                ("privateKey", "private key"),
                ("caCertificates", "CA bundle"),
                ("credentialName", "credentialName"),
            )
            if tls.get(field)
        ]
    if mode in ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL") and not tls.get("credentialName"):
        label = "SIMPLE" if mode == "SIMPLE" else "MUTUAL"
        errors = [
            f"{label} TLS requires a {what}"
            for field, what in (("serverCertificate", "server certificate"), ("privateKey", "private key"))
            if not tls.get(field)
        ]
        if mode != "SIMPLE" and not tls.get("caCertificates"):
            errors.append("MUTUAL TLS requires a client CA bundle")
        return errors
    return []


def _virtual_service(spec: dict[str, Any], _: Resource) -> list[str]:
    """validation.go ValidateVirtualService, validateTLSRoute, validateTLSMatch, validateSniHost,
    validateTCPRoute, validateDestination."""
    errors: list[str] = []
    hosts = [str(h) for h in spec.get("hosts") or []]
    gateways = [str(g) for g in spec.get("gateways") or []]
    if not hosts:  # a delegate
        if spec.get("gateways"):
            errors.append("delegate virtual service must have no gateways specified")
        for section in ("tls", "tcp"):
            if spec.get(section):
                errors.append(f"delegate virtual service must have no {section} route specified")
    for host in hosts:
        problem = _wildcard_domain_error(host) if host != "*" else None
        if problem and not re.match(r"^[0-9.:a-fA-F]+$", host):
            errors.append(problem)
        elif host == "*" and (not gateways or "mesh" in gateways):
            errors.append("wildcard host * is not allowed for virtual services bound to the mesh gateway")
    if not (spec.get("http") or spec.get("tcp") or spec.get("tls")):
        errors.append("http, tcp or tls must be provided in virtual service")
    for rule in spec.get("tls") or []:
        if not isinstance(rule, dict):
            continue
        matches = [m for m in rule.get("match") or [] if isinstance(m, dict)]
        if not matches:
            errors.append("TLS route must have at least one match condition")
        for match in matches:
            sni = [str(s) for s in match.get("sniHosts") or []]
            if not sni:
                errors.append("TLS match must have at least one SNI host")
            for name in sni:
                if not any(_subset_of(name, h) for h in hosts):
                    errors.append(
                        f'SNI host "{name}" is not a compatible subset of any of the virtual service '
                        f"hosts: [{', '.join(hosts)}]"
                    )
        if not rule.get("route"):
            errors.append("TLS route is required")
        errors += _destinations(rule.get("route"))
    for rule in spec.get("tcp") or []:
        if isinstance(rule, dict):
            if not rule.get("route"):
                errors.append("TCP route is required")
            errors += _destinations(rule.get("route"))
    for rule in spec.get("http") or []:
        if isinstance(rule, dict):
            errors += _destinations(rule.get("route"))
    return errors


def _subset_of(name: str, host: str) -> bool:
    """host.Name.SubsetOf (istio/istio@1.23.2:pkg/config/host/name.go): every name `name` can be,
    `host` can be too."""
    if host == "*" or host == name:
        return True
    if host.startswith("*."):
        suffix = host[1:]
        return name.endswith(suffix)
    return False


def _destinations(routes: Any) -> list[str]:
    errors: list[str] = []
    for item in routes or []:
        dest = item.get("destination") if isinstance(item, dict) else None
        if not isinstance(dest, dict):
            continue
        host = str(dest.get("host") or "")
        if host == "*":
            errors.append(f"invalid destination host {host}")
        elif problem := _wildcard_domain_error(host):
            errors.append(problem)
    return errors


def _destination_rule(spec: dict[str, Any], _: Resource) -> list[str]:
    """validation.go ValidateDestinationRule and validateSubset."""
    errors: list[str] = []
    host = str(spec.get("host") or "")
    if host != "*" and (problem := _wildcard_domain_error(host)):
        errors.append(problem)
    names: set[str] = set()
    for subset in spec.get("subsets") or []:
        if not isinstance(subset, dict):
            continue
        name = str(subset.get("name") or "")
        if name in names:
            errors.append(f"duplicate subset names: {name}")
        names.add(name)
        if not name:
            errors.append("subset name cannot be empty")
        elif not _LABEL.match(name):
            errors.append(f"subset name is invalid: {name}")
    return errors


def _envoy_filter(spec: dict[str, Any], _: Resource) -> list[str]:
    """istio/istio@1.23.2:pkg/config/validation/envoyfilter/envoyfilter.go validateEnvoyFilter:
    the per-patch checks, each stopping at the first problem of its patch."""
    errors: list[str] = []
    for patch in spec.get("configPatches") or []:
        if not isinstance(patch, dict):
            errors.append("Envoy filter: null config patch")
            continue
        body = patch.get("patch")
        if not patch.get("applyTo"):
            errors.append("Envoy filter: missing applyTo")
        elif not isinstance(body, dict):
            errors.append("Envoy filter: missing patch")
        elif not body.get("operation"):
            errors.append("Envoy filter: missing patch operation")
        elif body.get("operation") != "REMOVE" and body.get("value") is None:
            errors.append("Envoy filter: missing patch value for non-remove operation")
        else:
            match = patch.get("match") if isinstance(patch.get("match"), dict) else {}
            listener = match.get("listener") if isinstance(match.get("listener"), dict) else None
            listener_kinds = ("LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER")
            if patch["applyTo"] in listener_kinds and ("routeConfiguration" in match or "cluster" in match):
                errors.append("Envoy filter: applyTo for listener class objects cannot have non listener match")
            elif listener is not None:
                chain = listener.get("filterChain") if isinstance(listener.get("filterChain"), dict) else {}
                found = chain.get("filter") if isinstance(chain.get("filter"), dict) else None
                if found is not None and not found.get("name"):
                    errors.append("Envoy filter: filter match has no name to match on")
    return errors


_CHECKS = {
    "EnvoyFilter": _envoy_filter,
    "ServiceEntry": _service_entry,
    "Gateway": _gateway,
    "VirtualService": _virtual_service,
    "DestinationRule": _destination_rule,
}
