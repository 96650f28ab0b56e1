"""stack: create the CloudFormation stack (or reuse ours), streaming its events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab import TOOLKIT, expiry
from lab.cloud import TAG_CREATED_AT, TAG_CREATED_BY, TAG_NAME, TAG_OWNER, StackInfo, format_event
from lab.errors import LabError
from lab.recovery import TAG_ISTIO_VERSION, TAG_NETSHOOT_IMAGE
from lab.state import NodeInfo, now_iso
from lab.steps.base import Step, UpContext
from lab.template import NODE_OUTPUTS, parameters, template_body

CREATE_TIMEOUT = 30 * 60.0


class Stack(Step):
    name = "stack"
    title = "Creating the CloudFormation stack"
    remote = False

    def done(self, ctx: UpContext) -> bool:
        info = ctx.cloud.stack(ctx.lab.state.stack_id or ctx.settings.stack_name)
        if info is None or info.status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):  # updated by --rebuild
            return False
        require_ours(info, ctx.lab.state.owner)
        ctx.seen[self.name] = info
        return True

    def record(self, ctx: UpContext) -> None:
        record_stack(ctx, ctx.seen[self.name])

    def run(self, ctx: UpContext) -> None:
        cloud, settings, state, spec = ctx.cloud, ctx.settings, ctx.lab.state, ctx.spec
        info = cloud.stack(settings.stack_name)
        if info is not None:
            require_ours(info, state.owner)
            if info.status == "ROLLBACK_COMPLETE":
                ctx.detail(
                    f"stack {info.name} failed earlier (ROLLBACK_COMPLETE): deleting it to start again"
                )
                cloud.delete_stack(info.stack_id)
                cloud.wait_for_stack(
                    info.stack_id, done=("DELETE_COMPLETE",), timeout=CREATE_TIMEOUT, on_event=_printer(ctx)
                )
                info = None
            elif info.status not in ("CREATE_IN_PROGRESS", "CREATE_COMPLETE"):
                raise LabError(
                    f"stack {info.name} is {info.status}",
                    "wait for it to settle, or run `invoke down` and then `invoke up`",
                )
        if info is None:
            tags = {
                TAG_NAME: settings.name,
                TAG_CREATED_BY: TOOLKIT,
                TAG_CREATED_AT: now_iso(),
                TAG_OWNER: state.owner or "unknown",
                # Not template parameters: kept on the stack so that a lost state can be rebuilt.
                TAG_ISTIO_VERSION: spec.istio_version,
                TAG_NETSHOOT_IMAGE: spec.netshoot_image,
            }
            stack_id = cloud.create_stack(
                settings.stack_name,
                template_body(),
                parameters(spec),
                tags,
            )
            state.stack_id, state.created_at = stack_id, tags[TAG_CREATED_AT]
            _forget_old_nodes(ctx)
            ctx.lab.save()  # so that Ctrl-C from here on still leaves a lab `down` can find
            expiry.start(ctx)  # the deadline, before the instances bill for long
        else:
            state.stack_id = info.stack_id
        final = cloud.wait_for_stack(
            state.stack_id, done=("CREATE_COMPLETE",), timeout=CREATE_TIMEOUT, on_event=_printer(ctx)
        )
        record_stack(ctx, final)


def require_ours(info: StackInfo, caller: str | None) -> None:
    """Refuse a stack this toolkit did not create, or that someone else's `up` created."""
    if not info.ours:
        raise LabError(
            f"a stack named {info.name} exists but is not tagged {TAG_CREATED_BY}={TOOLKIT}",
            "choose another lab name with --name; this toolkit never touches stacks it did not create",
        )
    owner = info.tags.get(TAG_OWNER)
    if caller and owner and owner != caller:
        raise LabError(
            f"stack {info.name} belongs to {owner}, not to you ({caller})",
            "pick another lab name with --name; in a shared account, each person's lab needs its own",
        )


def _forget_old_nodes(ctx: UpContext) -> None:
    """A new stack means new instances: what later steps recorded about the old ones is void."""
    state = ctx.lab.state
    state.steps = {name: record for name, record in state.steps.items() if name in ("preflight", "key-pair")}
    state.nodes = {}
    for stale in ("known_hosts", "ssh_config"):
        (ctx.lab.dir / stale).unlink(missing_ok=True)


def _printer(ctx: UpContext) -> Callable[[dict[str, Any]], None]:
    return lambda event: ctx.note(format_event(event))


def record_stack(ctx: UpContext, info: StackInfo) -> None:
    """Nodes, addresses and instance ids into the state, from the stack's outputs and resources."""
    state = ctx.lab.state
    state.stack_id = info.stack_id
    state.created_at = state.created_at or info.tags.get(TAG_CREATED_AT) or info.created.isoformat()
    ids = ctx.cloud.instance_names(info.stack_id)
    missing = [name for name, key in NODE_OUTPUTS.items() if f"{key}PublicIp" not in info.outputs]
    if missing:
        raise LabError(
            f"stack {info.name} has no addresses for {', '.join(missing)}", "is the template up to date?"
        )
    state.nodes = {
        name: NodeInfo(name, info.outputs[f"{key}PublicIp"], info.outputs[f"{key}PrivateIp"], ids.get(name))
        for name, key in NODE_OUTPUTS.items()
    }
    ctx.lab.save()
