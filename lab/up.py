"""`invoke up`: run the steps in order, each reported with ✓/✗ and its time."""

from __future__ import annotations

import time
from collections.abc import Callable

from lab import evidence, lock, spec
from lab.cloud import Cloud
from lab.config import Settings
from lab.errors import LabError, UsageError
from lab.lab import Lab
from lab.progress import Progress
from lab.rebuild import rebuild as replace_node
from lab.recovery import local_state, rebuilt
from lab.state import LabState
from lab.steps import STEP_NAMES, STEPS, Step, UpContext


def up(
    settings: Settings, until: str | None = None, progress: Progress | None = None, rebuild: str | None = None
) -> Lab:
    if until is not None and until not in STEP_NAMES:
        raise UsageError(f"unknown step '{until}'", f"steps: {', '.join(STEP_NAMES)}")
    progress = progress or Progress()
    with lock.hold(settings.lab_dir, "up", _stack_deleting(settings)) as held:
        return _up(settings, until, progress, held, rebuild)


def _up(settings: Settings, until: str | None, progress: Progress, held: lock.Held, rebuild: str | None) -> Lab:
    state, why = local_state(settings, progress)
    if state is None:
        cloud = Cloud(settings.region, settings.profile)
        state = rebuilt(settings, progress, cloud, why, keep_damaged=True) or LabState(
            name=settings.name, region=settings.region, stack_name=settings.stack_name
        )
    lab = Lab(settings, state)
    if lab.state.stack_id:
        settings = lab.settings = resumed(settings, lab.state)
    ctx = UpContext(settings, lab, progress)
    progress.info(f"Lab '{settings.name}' in {lab.state.region} (stack {settings.stack_name})")
    started = time.monotonic()
    try:
        if rebuild:
            replace_node(ctx, rebuild)
        for step in STEPS:
            _run_step(ctx, step)
            if step.name == until:
                progress.info(f"Stopped after '{until}' as asked; `invoke up` continues from here.")
                return lab
    except KeyboardInterrupt:
        if not held.deleting:
            progress.warn("Interrupted. Nothing was deleted: `invoke up` resumes, `invoke down` removes the lab.")
        raise
    finally:
        ctx.close()
    _summary(ctx, time.monotonic() - started)
    return lab


def _stack_deleting(settings: Settings) -> Callable[[], bool]:
    """Whether the lab's stack is being deleted (by a `down` run elsewhere); asked by the lock's watcher."""
    clouds: list[Cloud] = []

    def deleting() -> bool:
        if not clouds:
            clouds.append(Cloud(settings.region, settings.profile))
        info = clouds[0].stack(settings.stack_name)
        return info is not None and info.status == "DELETE_IN_PROGRESS"

    return deleting


def resumed(settings: Settings, state: LabState) -> Settings:
    """A lab that exists keeps what it was created with (its spec): a setting the user gave that
    differs is refused in one line, since `up` cannot change it on a running lab."""
    if state.spec is not None:
        for problem, fix in spec.conflicts(state.spec, settings):
            raise UsageError(problem, fix)
    return settings


def _run_step(ctx: UpContext, step: Step) -> None:
    lab = ctx.lab
    with ctx.progress.step(step.title) as handle:
        ctx.handle = handle
        try:
            if step.done(ctx):
                handle.skip()
                step.record(ctx)
                previous = lab.state.steps.get(step.name)
                lab.state.record_step(step.name, True, previous.seconds if previous else handle.elapsed)
            else:
                step.run(ctx)
                lab.state.record_step(step.name, True, handle.elapsed)
        except BaseException as error:
            lab.state.record_step(step.name, False, handle.elapsed)
            if lab.state.stack_id:
                lab.save()
            held = lock.current()
            if held is not None and held.deleting:
                raise
            if isinstance(error, Exception) and step.remote and lab.state.nodes:
                handle.note("collecting evidence")
                bundle = evidence.collect(
                    ctx.nodes(tuple(lab.state.nodes)), lab.dir, f"step {step.name}: {error}"
                )
                message = error.message if isinstance(error, LabError) else str(error)
                fix = getattr(error, "hint", None) or "fix the cause and run `invoke up` again to resume"
                raise LabError(f"step '{step.name}' failed: {message}", f"evidence in {bundle}; {fix}") from error
            raise
        finally:
            ctx.handle = None
        if lab.state.stack_id or (lab.dir / "state.json").exists() or step.name != "preflight":
            lab.save()


def _summary(ctx: UpContext, seconds: float) -> None:
    state, out = ctx.lab.state, ctx.progress
    out.info(f"\nLab '{state.name}' is ready in {seconds:.0f}s.")
    for name, record in state.steps.items():
        out.info(f"  {name:<12} {record.seconds:>7.1f}s")
    server = state.nodes.get("k3s-s")
    port = state.facts.get("kiali_node_port")
    if server and port:
        out.info(
            f"Kiali: http://{server.public_ip}:{port}/  (open to {state.ssh_cidr} only) or `invoke kiali`"
        )
    out.info(
        "Next: `invoke scenario egress-sni`, `invoke status`, `invoke ssh`, and `invoke down` when you are done."
    )
