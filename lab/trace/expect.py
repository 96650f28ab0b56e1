"""The scenario `path` expectation: `expect: {path: {verdict: V, gateway: {namespace: NS, selector: SEL}}}`
on an exec step, judged on the trace of that step's request (the same engine as `invoke trace`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lab.trace.verdict import Trace


@dataclass(frozen=True)
class PathExpect:
    verdict: str
    gateway_namespace: str | None = None
    gateway_selector: str | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> PathExpect:
        gateway = spec.get("gateway") or {}
        return cls(spec["verdict"], gateway.get("namespace"), gateway.get("selector"))

    def __str__(self) -> str:
        via = f" via {self.gateway_selector} in {self.gateway_namespace}" if self.gateway_namespace else ""
        return f"{self.verdict}{via}"

    def check(self, trace: Trace | None, labels: dict[str, dict[str, str]]) -> tuple[bool, str]:
        """(passed, what was observed); `labels`: NAMESPACE/POD -> labels of the gateway pods."""
        if trace is None:
            return False, "no trace: the request's logs were not read"
        received = f"observed {trace.verdict}: {trace.sentence}"
        if trace.verdict != self.verdict:
            return False, received
        if self.gateway_namespace is None:
            return True, received
        wanted = [g for g in trace.gateways if self._selects(g, labels.get(g, {}))]
        if not wanted:
            seen = ", ".join(trace.gateways) or "no gateway"
            return (
                False,
                f"{received} (through {seen}, not a pod of {self.gateway_selector} in {self.gateway_namespace})",
            )
        return True, received

    def _selects(self, proxy: str, labels: dict[str, str]) -> bool:
        namespace = proxy.partition("/")[0]
        return namespace == self.gateway_namespace and selects(self.gateway_selector or "", labels)


def selects(selector: str, labels: dict[str, str]) -> bool:
    """An equality-based label selector (`k=v,k2=v2`, `k==v`, `k!=v`, `k`), as kubectl -l reads it."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, _, value = term.partition("!=")
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, _, value = term.replace("==", "=").partition("=")
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.strip() not in labels:
            return False
    return True
