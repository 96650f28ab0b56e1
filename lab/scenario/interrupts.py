"""Ctrl-C during a scenario: counted by the CLI's SIGINT handler, acted on between cluster calls.

Remote commands are never killed half-way, so the cleanup always knows what was applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.nodes import CommandResult
from lab.scenario.cluster_state import ClusterLike, Shell


@dataclass
class Interrupts:
    """Ctrl-C presses so far, counted by the CLI's SIGINT handler."""

    count: int = 0


class Guarded:
    """The cluster, raising KeyboardInterrupt once Ctrl-C was pressed `threshold` times: before each
    call, and after it too unless `finish_current` (cleanup lets a finished command count as done)."""

    def __init__(
        self, cluster: ClusterLike, interrupts: Interrupts, threshold: int, finish_current: bool = False
    ) -> None:
        self._cluster, self._interrupts, self._threshold = cluster, interrupts, threshold
        self._finish_current = finish_current

    def _guard(self, call: Callable[[], Any]) -> Any:
        self._check()
        result = call()
        if not self._finish_current:
            self._check()
        return result

    def _check(self) -> None:
        if self._interrupts.count >= self._threshold:
            raise KeyboardInterrupt

    @property
    def node(self) -> Shell:
        return _GuardedShell(self._cluster.node, self._guard)

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float | None = None
    ) -> CommandResult:
        return self._guard(lambda: self._cluster.kubectl(*args, stdin=stdin, check=check, timeout=timeout))

    def kubectl_json(self, *args: str, timeout: float | None = None) -> dict[str, Any]:
        return self._guard(lambda: self._cluster.kubectl_json(*args, timeout=timeout))

    def istioctl(self, *args: str, check: bool = True, timeout: float | None = None) -> CommandResult:
        return self._guard(lambda: self._cluster.istioctl(*args, check=check, timeout=timeout))

    def wait(
        self, *targets: str, condition: str, namespace: str, timeout: float, selector: str | None = None
    ) -> None:
        self._guard(
            lambda: self._cluster.wait(
                *targets, condition=condition, namespace=namespace, timeout=timeout, selector=selector
            )
        )


class _GuardedShell:
    def __init__(self, node: Shell, guard: Callable[[Callable[[], Any]], Any]) -> None:
        self._node, self._guard = node, guard

    def run(
        self, command: str, *, stdin: str | None = None, check: bool = True, timeout: float | None = None
    ) -> CommandResult:
        return self._guard(lambda: self._node.run(command, stdin=stdin, check=check, timeout=timeout))
