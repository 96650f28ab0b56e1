"""The cluster: kubectl and istioctl on k3s-s over SSH, JSON output only.

Nothing here parses a human-readable table: every read asks for `-o json`.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from lab.config import Settings
from lab.errors import LabError
from lab.nodes import CommandResult, Node

KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
SERVER = "k3s-s"


class Cluster:
    def __init__(self, node: Node, istio_version: str) -> None:
        self.node = node
        self.istio_version = istio_version

    @classmethod
    def for_lab(cls, settings: Settings) -> Cluster:
        """The cluster of an existing lab, from its state file."""
        from lab.lab import Lab  # late: lab.lab imports this module

        lab = Lab.load(settings)
        return cls(lab.node(SERVER), lab.state.versions.get("istio", settings.istio_version))

    @property
    def istio_home(self) -> str:
        return f"$HOME/istio-{self.istio_version}"

    @property
    def istioctl_path(self) -> str:
        return f"{self.istio_home}/bin/istioctl"

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float | None = None
    ) -> CommandResult:
        return self.node.run(
            f"KUBECONFIG={KUBECONFIG} kubectl {_join(args)}",
            stdin=stdin,
            check=check,
            timeout=timeout,
        )

    def kubectl_json(self, *args: str, timeout: float | None = None) -> dict[str, Any]:
        result = self.kubectl(*args, "-o", "json", timeout=timeout)
        return _parse_json(result)

    def istioctl(self, *args: str, check: bool = True, timeout: float | None = None) -> CommandResult:
        return self.node.run(
            f"KUBECONFIG={KUBECONFIG} {self.istioctl_path} {_join(args)}",
            check=check,
            timeout=timeout,
        )

    def wait(
        self,
        *targets: str,
        condition: str,
        timeout: float,
        namespace: str | None = None,
        selector: str | None = None,
    ) -> None:
        """Block on kubectl's own wait rather than polling from here."""
        args = ["wait", f"--for=condition={condition}", *targets, f"--timeout={int(timeout)}s"]
        if namespace:
            args += ["-n", namespace]
        if selector:
            args += ["-l", selector]
        self.kubectl(*args, timeout=timeout + 30)


def condition(item: dict[str, Any], kind: str) -> bool:
    """Whether a Kubernetes object's status condition `kind` (Ready, Available) is True."""
    return any(
        c.get("type") == kind and c.get("status") == "True"
        for c in item.get("status", {}).get("conditions", [])
    )


def _join(args: tuple[str, ...]) -> str:
    # `$HOME/...` must expand on the node, so arguments that start with it stay unquoted.
    return " ".join(a if a.startswith("$HOME/") else shlex.quote(a) for a in args)


def _parse_json(result: CommandResult) -> dict[str, Any]:
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise LabError(f"{result.node}: `{result.command[:60]}` did not print JSON") from None
    if not isinstance(data, dict):
        raise LabError(f"{result.node}: `{result.command[:60]}` printed JSON that is not an object")
    return data
