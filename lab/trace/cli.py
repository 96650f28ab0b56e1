"""`invoke trace`: the path one request really took, from the proxies' access logs.

Exit codes: 0 when traced (and `--expect` holds), 1 when `--expect` does not hold or the cleanup or
leak check found a problem, 2 for bad flags.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from lab import lock, verdicts
from lab.errors import UsageError
from lab.progress import Progress
from lab.trace import applied as config
from lab.trace import live, offline
from lab.trace.join import Target
from lab.trace.predict import predicted_verdict
from lab.trace.render import trace_json, trace_text
from lab.trace.verdict import TRACE_VERDICTS, Trace
from lab.waiting import Timeout, wait_until

FORMATS = ("text", "json")
DEFAULT_CONTAINER = "netshoot"  # the lab's client pods (manifests/lab/netshoot.yaml)
CURL_SECONDS = 10
DEPLOYMENT_SECONDS = 180.0
PUSH_SECONDS = 30.0


def check_flags(to: str | None, fmt: str, expect: str | None) -> None:
    if not to:
        raise UsageError("trace needs --to URL", "for example --to https://en.wikipedia.org/")
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    if expect and expect not in TRACE_VERDICTS:
        raise UsageError(f"unknown verdict {expect!r}", f"use one of: {', '.join(TRACE_VERDICTS)}")


def client_ref(source: str | None) -> tuple[str, str]:
    namespace, _, pod = (source or "default/pod1").rpartition("/")
    return namespace or "default", pod


def run_offline(
    folder: str, to: str | None, source: str | None, remote_ip: str | None, fmt: str, expect: str | None
) -> int:
    check_flags(to, fmt, expect)
    namespace, pod = client_ref(source)
    client, gateways = offline.read_folder(Path(folder), f"{namespace}/{pod}")
    from lab.trace.verdict import trace

    target = offline.saved_target(Path(folder), Target.parse(str(to), remote_ip or None), client.proxy)
    result = trace(client, gateways, target)
    return report(result, fmt, expect, Progress(_console(fmt)))


def run_live(
    settings: Any,
    paths: list[str],
    scenario: str | None,
    to: str | None,
    source: str | None,
    keep: bool,
    expect: str | None,
    fmt: str,
) -> int:
    check_flags(to, fmt, expect)
    target = Target.parse(str(to))
    progress = Progress(_console(fmt))
    plan, (namespace, pod, container), predicted = _plan(paths, scenario, source, str(to), progress)
    from lab.cluster import Cluster  # late: flag errors and the analyzer need no lab

    with lock.hold(settings.lab_dir, "trace"):  # one command at a time on a lab, as `scenario`
        cluster = Cluster.for_lab(settings)
        problems: list[str] = []
        result: Trace | None = None
        try:
            config.finish_pending(cluster, settings.lab_dir, progress)
            if plan is not None:
                config.finish_kept(cluster, settings.lab_dir / "kept", progress)
                config.apply(cluster, plan, progress)
                _wait_for_deployments(cluster, plan, progress)
            result = _request_and_trace(cluster, namespace, pod, container, target, settings.lab_dir, progress)
            if plan is not None and predicted and result.verdict != predicted:
                result = _again_while_pushing(
                    lambda: _request_and_trace(
                        cluster, namespace, pod, container, target, settings.lab_dir, progress
                    ),
                    result,
                    predicted,
                    progress,
                )
        finally:
            if plan is not None and keep:
                config.keep(plan, settings.lab_dir / "kept", progress)
            elif plan is not None:
                problems = config.clean_up(cluster, plan, progress)
        assert result is not None  # the try above either traced or raised
        result.predicted = predicted
        code = report(result, fmt, expect, progress)
        for problem in problems:
            progress.info(f"[red]✗[/] {escape(problem)}")
        return 1 if problems else code


def _plan(
    paths: list[str], scenario: str | None, source: str | None, to: str, progress: Progress
) -> tuple[config.Applied | None, tuple[str, str, str], str | None]:
    """What to apply (None: trace what is applied), the client (namespace, pod, app container),
    and what `explain` predicts."""
    if paths and scenario:
        raise UsageError("give manifest paths or --scenario NAME, not both", "trace one config at a time")
    namespace, pod = client_ref(source)
    if not paths and not scenario:
        return None, (namespace, pod, DEFAULT_CONTAINER), None
    container, policy, preserve = DEFAULT_CONTAINER, None, ()
    if scenario:
        from lab.scenario.model import load_catalog, select

        [chosen] = select(load_catalog(), [scenario], run_all=False)
        files, policy, preserve = chosen.manifests, chosen.outbound_policy, chosen.preserve
        if not source:
            namespace, pod, container = chosen.client.namespace, chosen.client.pod, chosen.client.container
    else:
        files = config.manifest_files(paths)
    _show_findings(files, policy == "REGISTRY_ONLY", progress)
    predicted = predicted_verdict(files, policy == "REGISTRY_ONLY", f"{namespace}/{pod}", to)
    return config.Applied(files, policy, preserve=tuple(preserve)), (namespace, pod, container), predicted


def _show_findings(files: list[Path], registry_only: bool, progress: Progress) -> None:
    try:
        from lab.analyzer import analyze_paths
    except ImportError:
        return
    findings = analyze_paths(files, registry_only=registry_only)
    with progress.step(
        f"analyze {len(files)} manifest{'s' if len(files) != 1 else ''} (not blocking)"
    ) as handle:
        for f in findings:
            where = f"{f.kind} {f.namespace}/{f.name}" if f.namespace else f"{f.kind} {f.name}"
            handle.detail(escape(f"{f.severity} {f.code} {where}: {f.message}"))


def _wait_for_deployments(cluster: Any, plan: config.Applied, progress: Progress) -> None:
    from lab.scenario.undo import load_documents

    for path in plan.files:
        for doc in load_documents(path):
            if doc.get("kind") != "Deployment":
                continue
            meta = doc.get("metadata") or {}
            name, namespace = meta.get("name"), meta.get("namespace") or "default"
            with progress.step(f"wait for deployment/{name} Available in {namespace}"):
                cluster.wait(
                    f"deployment/{name}",
                    condition="Available",
                    namespace=namespace,
                    timeout=DEPLOYMENT_SECONDS,
                )


def _again_while_pushing(
    send: Callable[[], Trace], first: Trace, predicted: str, progress: Progress
) -> Trace:
    """istiod pushes a new config to the proxies within seconds, not at once: when the first request
    disagrees with the prediction, send it again for a while; the last observation is the answer."""
    progress.warn(
        f"observed {first.verdict}, explain predicts {predicted}: the proxies may not have the new config "
        f"yet; sending again for up to {PUSH_SECONDS:.0f}s"
    )
    latest = [first]

    def attempt() -> bool:
        latest[0] = send()
        return latest[0].verdict == predicted

    with contextlib.suppress(Timeout):
        wait_until(attempt, timeout=PUSH_SECONDS, what="the predicted path", first=2.0, interval=5.0)
    return latest[0]


def _request_and_trace(
    cluster: Any, namespace: str, pod: str, container: str, target: Target, lab_dir: Path, progress: Progress
) -> Trace:
    proxies = live.discover(cluster, namespace, pod)
    gateways = ", ".join(g.proxy for g in proxies.gateways) or "none"
    progress.info(f"  gateway proxies in the cluster: {gateways}")
    start = live.start_time(cluster)
    command = live.with_remote_ip(
        ["curl", "-sS", "-o", "/dev/null", "--max-time", str(CURL_SECONDS), "-w", "%{http_code}", target.url]
    )
    with progress.step(f"curl {target.url} from {namespace}/{pod}") as handle:
        ran = cluster.kubectl(
            "exec",
            "-n",
            namespace,
            pod,
            "-c",
            container,
            "--",
            *command,
            check=False,
            timeout=CURL_SECONDS + 30,
        )
        ip, stderr = live.remote_ip(ran.stderr)
        status = ran.stdout.strip()[-3:] or "000"
        handle.detail(f"exit code {ran.exit_code}, HTTP status {status}, connected to {ip or '-'}")
        if stderr.strip():
            handle.detail(escape(stderr.strip().splitlines()[-1]))
    target = Target(target.url, target.scheme, target.host, target.port, ip, start)
    with progress.step("read the access logs since the request began"):
        result, client, gateway_logs = live.settle(cluster, proxies, target)
    if result.verdict == verdicts.NO_EVIDENCE:
        result.notes += live.no_evidence_hints(cluster, proxies.client)
    folder = lab_dir / "reports" / f"trace-{start:%Y%m%dT%H%M%SZ}"
    offline.write_folder(folder, [client, *gateway_logs], target)
    progress.info(f"  logs saved in {folder}/ (`invoke trace --logs` reads them again)")
    return result


def report(result: Trace, fmt: str, expect: str | None, progress: Progress) -> int:
    if fmt == "json":
        print(trace_json(result))
    else:
        for line in trace_text(result):
            progress.info(escape(line))
    if expect and result.verdict != expect:
        progress.info(f"[red]✗[/] expected {expect}, observed {result.verdict}")
        return 1
    return 0


def _console(fmt: str) -> Console:
    # JSON on stdout stays parseable: progress goes to stderr then.
    return Console(file=sys.stderr if fmt == "json" else sys.stdout, highlight=False, soft_wrap=True)
