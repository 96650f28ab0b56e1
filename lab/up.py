"""`invoke up`: run the steps, overlapping those that do not need each other, each reported with
✓/✗ and its time; the summary gives each step's own time and the wall time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from lab import evidence, expiry, lock, spec, waiting
from lab.cloud import Cloud
from lab.config import Settings
from lab.errors import LabError, UsageError
from lab.lab import Lab
from lab.progress import Progress
from lab.rebuild import rebuild as replace_node
from lab.recovery import local_state, rebuilt
from lab.state import LabState
from lab.steps import NEEDS, STEP_NAMES, STEPS, Step, Stopped, UpContext


def up(
    settings: Settings, until: str | None = None, progress: Progress | None = None, rebuild: str | None = None
) -> Lab:
    if until is not None and until not in STEP_NAMES:
        raise UsageError(f"unknown step '{until}'", f"steps: {', '.join(STEP_NAMES)}")
    progress = progress or Progress()
    expiry.check(settings)
    # A lab its deadline deleted: cleaned up as `down` would (before the lock: `down` tells the
    # lock's holder to stop), then up creates a new one.
    expiry.settle_expired(settings, progress)
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
    steps = STEPS[: STEP_NAMES.index(until) + 1] if until else STEPS
    pipeline = Pipeline(ctx, steps)
    try:
        if rebuild:
            replace_node(ctx, rebuild)
        pipeline.run()
        if until:
            progress.info(f"Stopped after '{until}' as asked; `invoke up` continues from here.")
            expiry.announce(ctx)
            return lab
    except KeyboardInterrupt:
        if not held.deleting:
            progress.warn("Interrupted. Nothing was deleted: `invoke up` resumes, `invoke down` removes the lab.")
        raise
    finally:
        ctx.close()
    _summary(ctx, time.monotonic() - started, pipeline.times)
    expiry.announce(ctx)
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


class Pipeline:
    """Runs each step in its own thread as soon as the steps it needs (`NEEDS`) have succeeded.

    The first failure stops the rest: steps not started never start, running ones are cut
    (their remote waits end with the connections) and say "stopped", and the failure is raised
    as the failing step reported it, with its evidence.
    """

    def __init__(self, ctx: UpContext, steps: tuple[Step, ...]) -> None:
        self.ctx = ctx
        self.steps = steps
        self.names = {step.name for step in steps}
        self.save_lock = threading.Lock()
        self.failure: BaseException | None = None
        self.failed_step = ""
        # this run's own time of each step that ran or was found done
        self.times: dict[str, tuple[float, bool]] = {}

    def run(self) -> None:
        waiting.STOP.clear()  # a previous in-process run may have set it
        threads = [
            threading.Thread(target=self._worker, args=(step,), name=f"step-{step.name}", daemon=True)
            for step in self.steps
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.2)
                    if self.failure is not None:
                        self._stop_the_rest()
        except KeyboardInterrupt:
            self._stop_the_rest()
            for thread in threads:
                thread.join(timeout=5)  # let each record its state
            raise
        if self.failure is not None:
            raise self.failure

    def _stop_the_rest(self) -> None:
        if not waiting.STOP.is_set():
            waiting.interrupt()
            for node in list(self.ctx._nodes.values()):
                node.close()

    def _worker(self, step: Step) -> None:
        waits = self.ctx.waits
        ok = False
        try:
            for need in NEEDS.get(step.name, ()):
                if need in self.names:
                    waits.event(need).wait()
                    if not waits.ok(need):
                        return
            if not waiting.STOP.is_set():
                self._run_step(step)
                if step.name == "stack":
                    expiry.ensure(self.ctx)  # a resumed lab that lost its schedule gets one
                ok = True
        except Stopped:
            pass
        except BaseException as error:  # shown by the step's own ✗ line; raised by run()
            if self.failure is None:
                self.failure, self.failed_step = error, step.name
        finally:
            waits.finish(step.name, ok)

    def _run_step(self, step: Step) -> None:
        lab = self.ctx.lab
        with self.ctx.progress.step(step.title) as handle:
            ctx = self.ctx.for_step(handle)
            try:
                if step.done(ctx):
                    handle.skip()
                    previous = lab.state.steps.get(step.name)
                    # the step's own record hook writes what its (read-only) done check read
                    self._record(step, True, previous.seconds if previous else handle.own, ctx)
                    self.times[step.name] = (handle.own, True)
                else:
                    step.run(ctx)
                    self._record(step, True, handle.own)
                    self.times[step.name] = (handle.own, False)
            except Stopped:
                self._record(step, False, handle.own)
                raise
            except BaseException as error:
                self._record(step, False, handle.own)
                if waiting.STOP.is_set():
                    if self.failure is not None:  # cut short by another step's failure
                        raise Stopped(self.failed_step) from error
                    raise
                held = lock.current()
                if held is not None and held.deleting:
                    raise  # `invoke down` is deleting the lab: no evidence, no advice to resume
                if isinstance(error, Exception) and step.remote and lab.state.nodes:
                    handle.note("collecting evidence")
                    bundle = evidence.collect(
                        ctx.nodes(tuple(lab.state.nodes)), lab.dir, f"step {step.name}: {error}"
                    )
                    message = error.message if isinstance(error, LabError) else str(error)
                    fix = getattr(error, "hint", None) or "fix the cause and run `invoke up` again to resume"
                    raise LabError(
                        f"step '{step.name}' failed: {message}", f"evidence in {bundle}; {fix}"
                    ) from error
                raise

    def _record(self, step: Step, done: bool, seconds: float, found: UpContext | None = None) -> None:
        """Under the pipeline's lock: steps in other threads save the same state."""
        lab = self.ctx.lab
        with self.save_lock:
            if found is not None:
                step.record(found)
            lab.state.record_step(step.name, done, seconds)
            if lab.state.stack_id or (lab.dir / "state.json").exists() or step.name != "preflight":
                lab.save()


def _summary(ctx: UpContext, seconds: float, times: dict[str, tuple[float, bool]]) -> None:
    state, out = ctx.lab.state, ctx.progress
    own = sum(t for t, _ in times.values())
    out.info(
        f"\nLab '{state.name}' is ready in {seconds:.1f}s of wall time (the steps' own times below add up "
        f"to {own:.1f}s: some ran side by side)."
    )
    for name, (took, skipped) in times.items():
        out.info(f"  {name:<12} {took:>7.1f}s" + ("  (done before)" if skipped else ""))
    for warning in ctx.warnings:
        out.warn(warning)
    server = state.nodes.get("k3s-s")
    port = state.facts.get("kiali_node_port")
    if server and port:
        out.info(
            f"Kiali: http://{server.public_ip}:{port}/  (open to {state.ssh_cidr} only) or `invoke kiali`"
        )
    out.info(
        "Next: `invoke scenario egress-sni`, `invoke status`, `invoke ssh`, and `invoke down` when you are done."
    )
