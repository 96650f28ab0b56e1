"""`invoke down`: delete only what this toolkit created, and prove nothing is left running."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from lab import TOOLKIT
from lab.cloud import TAG_CREATED_BY, Cloud
from lab.config import Settings
from lab.errors import LabError
from lab.progress import Progress, StepHandle
from lab.state import LabState, load_state
from lab.steps.stack import instance_ids
from lab.waiting import wait_until

DELETE_TIMEOUT = 30 * 60.0


def down(settings: Settings, progress: Progress | None = None) -> None:
    progress = progress or Progress()
    state = load_state(settings.lab_dir)
    region = state.region if state else settings.region
    cloud = Cloud(region, settings.profile)
    info = cloud.stack(state.stack_id if state and state.stack_id else settings.stack_name)
    if info is None or info.status == "DELETE_COMPLETE":
        progress.info(f"Nothing to delete: no stack {settings.stack_name} in {region}.")
    else:
        if not info.ours:
            raise LabError(
                f"stack {info.name} is not tagged {TAG_CREATED_BY}={TOOLKIT}: refusing to delete it",
                "this toolkit deletes only stacks it created; delete it yourself if you are sure",
            )
        ids = set(instance_ids(cloud, info.stack_id).values())
        ids |= {n.instance_id for n in (state.nodes.values() if state else []) if n.instance_id}
        with progress.step(f"Deleting stack {info.name}") as step:
            _delete_stack(cloud, info.stack_id, step)
        with progress.step("Checking that no instance is left running") as step:
            _prove_terminated(cloud, sorted(ids))
            step.detail(f"{len(ids)} instances terminated")
    if state is not None:
        _delete_key_pair(cloud, state, progress)
        archive = settings.home / "archive" / f"{settings.name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
        archive.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(settings.lab_dir), archive)
        progress.info(f"Local state archived in {archive}")


def _delete_stack(cloud: Cloud, stack_id: str, step: StepHandle) -> None:
    def show(event: dict) -> None:
        step.note(f"{event['ResourceType']} {event['LogicalResourceId']} {event['ResourceStatus']}")

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


def _delete_key_pair(cloud: Cloud, state: LabState, progress: Progress) -> None:
    if not (state.key_created and state.key_name):
        return
    with progress.step(f"Deleting key pair {state.key_name}") as step:
        pair = cloud.key_pair(state.key_name)
        if pair is None:
            step.skip("already gone")
        else:
            tags = {t["Key"]: t["Value"] for t in pair.get("Tags", [])}
            if tags.get(TAG_CREATED_BY) != TOOLKIT:
                raise LabError(f"key pair {state.key_name} is not tagged {TAG_CREATED_BY}={TOOLKIT}: kept it")
            cloud.delete_key_pair(state.key_name)
        if state.key_file:
            Path(state.key_file).unlink(missing_ok=True)
