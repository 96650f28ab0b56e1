"""`invoke down`: delete only what this toolkit created, and prove nothing is left running."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from lab import TOOLKIT, expiry, lock
from lab.cloud import TAG_CREATED_BY, TAG_NAME, Cloud, format_event
from lab.config import Settings
from lab.errors import LabError
from lab.progress import Progress, StepHandle
from lab.recovery import local_state
from lab.steps.stack import require_ours
from lab.waiting import wait_until

DELETE_TIMEOUT = 30 * 60.0
# How long the command that holds the lab's lock gets to stop before the folder is archived anyway.
HOLDER_GRACE = 60.0


def down(settings: Settings, progress: Progress | None = None) -> None:
    """Needs no local state: the stack says what to delete (a damaged or missing file is said so)."""
    progress = progress or Progress()
    state, _why = local_state(settings, progress)
    region = state.region if state else settings.region
    cloud = Cloud(region, settings.profile)
    holder = lock.announce_deletion(settings.lab_dir)
    if holder is not None:
        progress.info(f"{holder.describe()} is working on this lab: told it to stop")
    info = cloud.stack(state.stack_id if state and state.stack_id else settings.stack_name)
    if info is None or info.status == "DELETE_COMPLETE":
        progress.info(f"Nothing to delete: no stack {settings.stack_name} in {region}.")
        expiry.before_delete(cloud, settings, state, progress)  # a deadline that outlived its stack
        for left in expiry.left_behind(cloud, settings, state):
            progress.warn(f"{left} outlived its stack (it bills nothing): delete it in the IAM console")
    else:
        require_ours(info, cloud.caller()["arn"])
        expiry.before_delete(cloud, settings, state, progress)
        ids = set(cloud.instance_names(info.stack_id).values())
        ids |= {n.instance_id for n in (state.nodes.values() if state else []) if n.instance_id}
        with progress.step(f"Deleting stack {info.name}") as step:
            _delete_stack(cloud, info.stack_id, step)
        with progress.step("Checking that no instance is left running") as step:
            _prove_terminated(cloud, sorted(ids))
            step.detail(f"{len(ids)} instances terminated")
            left = expiry.left_behind(cloud, settings, state)
            if left:
                raise LabError(
                    f"the stack is deleted but its deadline is not: {', '.join(left)} still there",
                    "run `invoke down` again, or delete them in the console",
                )
            step.detail("deadline schedule and role gone")
    # Without local state (lost, or another machine), the key pair `up` created is still ours
    # when its tags say so.
    key_name = state.key_name if state else settings.own_key_name
    if state is None or state.key_created:
        _delete_key_pair(cloud, settings.name, key_name, state.key_file if state else None, progress)
    if holder is not None and not lock.wait_released(settings.lab_dir, HOLDER_GRACE):
        progress.warn(f"{holder.describe()} did not stop within {HOLDER_GRACE:.0f}s; archiving anyway")
    if settings.lab_dir.exists():
        archive = settings.home / "archive" / f"{settings.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
        archive.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(settings.lab_dir), archive)
        progress.info(f"Local state archived in {archive}")


def _delete_stack(cloud: Cloud, stack_id: str, step: StepHandle) -> None:
    def show(event: dict) -> None:
        if event["ResourceStatus"].startswith("DELETE"):  # not the stack's creation history
            step.note(format_event(event))

    for attempt in (1, 2):
        cloud.delete_stack(stack_id)
        try:
            cloud.wait_for_stack(stack_id, done=("DELETE_COMPLETE",), timeout=DELETE_TIMEOUT, on_event=show)
            return
        except LabError as error:
            left = [
                f"{r['LogicalResourceId']} ({r['ResourceType']}, {r.get('PhysicalResourceId', '?')})"
                for r in cloud.resources(stack_id)
                if r["ResourceStatus"] != "DELETE_COMPLETE"
            ]
            step.detail(f"deletion failed ({error}); left: {', '.join(left) or 'nothing listed'}")
            if attempt == 2:
                raise LabError(
                    f"stack {stack_id} could not be deleted; still there: {', '.join(left)}",
                    "run `invoke down` again, or delete those resources in the console",
                ) from None
            step.detail("retrying the deletion once")


def _prove_terminated(cloud: Cloud, ids: list[str]) -> None:
    def all_terminated() -> bool:
        states = cloud.instance_states(ids)
        return all(states.get(i, "terminated") == "terminated" for i in ids)

    wait_until(all_terminated, timeout=600, interval=5, what="the lab's instances to terminate")


def _delete_key_pair(
    cloud: Cloud, lab_name: str, key_name: str | None, key_file: str | None, progress: Progress
) -> None:
    pair = cloud.key_pair(key_name) if key_name else None
    if pair is None:
        return
    tags = {t["Key"]: t["Value"] for t in pair.get("Tags", [])}
    if tags.get(TAG_CREATED_BY) != TOOLKIT or tags.get(TAG_NAME) != lab_name:
        progress.warn(f"key pair {key_name} was not created by this toolkit for lab '{lab_name}': kept it")
        return
    with progress.step(f"Deleting key pair {key_name}"):
        cloud.delete_key_pair(key_name)
        if key_file:
            Path(key_file).unlink(missing_ok=True)
