"""The stack is the source of truth: a lab's state rebuilt from its parameters, outputs and tags.

Every fact needed to operate a lab lives on the stack (docs/architecture.md, "Where each fact
lives"): the local `state.json` is a cache of it plus the progress of `up`. When the file is
missing (another machine, `.lab/` deleted) or damaged, `status`, `up` and `down` read the stack.
"""

from __future__ import annotations

from pathlib import Path

from lab import TOOLKIT
from lab.cloud import TAG_CREATED_AT, TAG_CREATED_BY, TAG_NAME, TAG_OWNER, Cloud, StackInfo
from lab.config import Settings
from lab.progress import Progress
from lab.spec import LabSpec
from lab.state import LabState, NodeInfo, StateDamaged, load_state, now_iso, state_path
from lab.template import NODE_OUTPUTS

# Versions that are not template parameters ride on the stack as tags.
TAG_ISTIO_VERSION, TAG_NETSHOOT_IMAGE = "lab:istio-version", "lab:netshoot-image"


def local_state(settings: Settings, progress: Progress) -> tuple[LabState | None, str | None]:
    """The state file's contents, or None and why (missing, or damaged: said in one line)."""
    try:
        state = load_state(settings.lab_dir)
    except StateDamaged as error:
        progress.warn(f"{error.message}: reading the stack instead")
        return None, "damaged"
    return state, None if state else "missing"


def live_stack(settings: Settings, cloud: Cloud, state: LabState | None = None) -> StackInfo | None:
    info = cloud.stack(state.stack_id if state and state.stack_id else settings.stack_name)
    if info is None or info.status == "DELETE_COMPLETE" or not info.ours:
        return None
    return info


def state_from_stack(settings: Settings, cloud: Cloud, info: StackInfo) -> LabState:
    """A LabState with every fact the stack holds; no step is recorded as done (each re-checks)."""
    params, tags = info.parameters, info.tags
    key_name = params.get("KeyName") or settings.own_key_name
    created = key_name == settings.own_key_name and _ours(cloud, key_name, settings.name)
    if created:
        key_file = str((settings.lab_dir / f"{key_name}.pem").resolve())
    else:
        key_file = str(Path(settings.key_file).expanduser().resolve()) if settings.key_file else ""
    ids = cloud.instance_names(info.stack_id)
    nodes = {
        name: NodeInfo(name, info.outputs[f"{key}PublicIp"], info.outputs[f"{key}PrivateIp"], ids.get(name))
        for name, key in NODE_OUTPUTS.items()
        if f"{key}PublicIp" in info.outputs
    }
    spec = LabSpec(
        name=tags.get(TAG_NAME, settings.name),
        region=cloud.region,
        instance_type=params.get("InstanceType") or settings.instance_type,
        k3s_version=params.get("K3sVersion") or settings.k3s_version,
        # stacks created before these tags: the request's (default) versions
        istio_version=tags.get(TAG_ISTIO_VERSION) or settings.istio_version,
        netshoot_image=tags.get(TAG_NETSHOOT_IMAGE) or settings.netshoot_image,
        ssh_cidr=params.get("SshCidr") or "",
        key_name=key_name,
        key_file=key_file,
        key_created=created,
    )
    return LabState(
        name=spec.name,
        region=cloud.region,
        stack_name=info.name,
        stack_id=info.stack_id,
        owner=tags.get(TAG_OWNER),
        account=info.stack_id.split(":")[4] if info.stack_id.count(":") >= 5 else None,
        created_at=tags.get(TAG_CREATED_AT) or info.created.isoformat(),
        spec=spec,
        nodes=nodes,
    )


def rebuilt(
    settings: Settings, progress: Progress, cloud: Cloud, why: str | None, keep_damaged: bool = False
) -> LabState | None:
    """The state rebuilt from the lab's stack (None without one), said in one line."""
    info = live_stack(settings, cloud)
    if info is None:
        return None
    if why == "damaged" and keep_damaged:
        damaged = state_path(settings.lab_dir)
        aside = damaged.with_name(f"state.damaged-{now_iso().replace(':', '')}.json")
        damaged.replace(aside)
        progress.info(f"  the damaged file is kept as {aside}")
    state = state_from_stack(settings, cloud, info)
    reason = "state.json is damaged" if why == "damaged" else f"no local state in {settings.lab_dir}"
    progress.info(f"{reason}: rebuilt lab '{settings.name}' from stack {info.name} ({info.status})")
    return state


def _ours(cloud: Cloud, key_name: str, lab_name: str) -> bool:
    pair = cloud.key_pair(key_name)
    tags = {t["Key"]: t["Value"] for t in (pair or {}).get("Tags", [])}
    return tags.get(TAG_CREATED_BY) == TOOLKIT and tags.get(TAG_NAME) == lab_name
