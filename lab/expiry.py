"""The deadline in AWS: the schedule beside the stack, the role inside it, and what up, extend,
status and down do with them. The pure parts (durations, names, the request) are in lab/deadline.py.

The lab's local state keeps `facts["ttl"]` (as given, or `none`) and `facts["deadline"]` (UTC,
ISO 8601): the schedule is the truth while it exists; the record says when the lab was due once
the schedule has deleted itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lab import deadline as dl
from lab.cloud import BOTO_CONFIG, Cloud, StackInfo, aws_errors
from lab.config import Settings
from lab.errors import LabError
from lab.pricing import PRICES_AS_OF, hourly_cost
from lab.progress import Progress
from lab.state import LabState, StateDamaged, load_state, save_state
from lab.waiting import retrying, wait_until

if TYPE_CHECKING:
    from lab.steps.base import UpContext

# The role is the stack's first resource; IAM creates one in seconds.
ROLE_TIMEOUT = 5 * 60.0


class RoleNotReady(LabError):
    """CreateSchedule checks that Scheduler can assume the role; a new role takes a while to be."""


class Deadlines:
    """Scheduler and IAM calls for one lab."""

    def __init__(self, cloud: Cloud, lab_name: str, stack_name: str, account: str) -> None:
        self.cloud, self.stack_name = cloud, stack_name
        self.name = dl.schedule_name(stack_name)
        self.role_name = dl.role_name(lab_name, cloud.region)
        self.role_arn = dl.role_arn(account, lab_name, cloud.region)
        self.scheduler = cloud.session.client("scheduler", config=BOTO_CONFIG)
        self.iam = cloud.session.client("iam", config=BOTO_CONFIG)

    def schedule(self) -> dict[str, Any] | None:
        """This lab's schedule, or None (absent, or a schedule of that name that is not ours)."""
        found = self._read_schedule()
        return found if found is not None and dl.is_ours(found, self.stack_name, self.role_arn) else None

    def due(self) -> datetime | None:
        found = self.schedule()
        if found is None:
            return None
        return dl.parse_at(found.get("ScheduleExpression", ""), found.get("ScheduleExpressionTimezone", "UTC"))

    def set(self, when: datetime) -> None:
        request = dl.schedule_request(self.stack_name, when, self.role_arn, self.cloud.region)
        existing = self._read_schedule()
        if existing is not None and not dl.is_ours(existing, self.stack_name, self.role_arn):
            raise LabError(
                f"a schedule named {self.name} exists in {self.cloud.region} but does not delete this lab",
                "rename or delete that schedule, or pick another lab name with --name",
            )
        with aws_errors():
            if existing is None:
                retrying(lambda: self._create(request), attempts=8, retry_on=(RoleNotReady,), first=1.0)
            else:
                self.scheduler.update_schedule(**request)

    def _create(self, request: dict[str, Any]) -> None:
        try:
            self.scheduler.create_schedule(**request)
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if _code(error) == "ValidationException" and "execution role" in message:
                raise RoleNotReady(
                    f"EventBridge Scheduler cannot assume {self.role_arn} yet: {message}",
                    "run `invoke up` again in a minute: it sets the deadline of a lab that has none",
                ) from None
            raise

    def remove(self) -> bool:
        """Delete this lab's schedule; True when there was one."""
        if self.schedule() is None:
            return False
        with aws_errors():
            try:
                self.scheduler.delete_schedule(Name=self.name, GroupName="default")
            except ClientError as error:
                if _code(error) != "ResourceNotFoundException":  # it fired meanwhile
                    raise
        return True

    def role_exists(self) -> bool:
        with aws_errors():
            try:
                self.iam.get_role(RoleName=self.role_name)
            except ClientError as error:
                if _code(error) == "NoSuchEntity":
                    return False
                raise
        return True

    def _read_schedule(self) -> dict[str, Any] | None:
        with aws_errors():
            try:
                return self.scheduler.get_schedule(Name=self.name, GroupName="default")
            except ClientError as error:
                if _code(error) == "ResourceNotFoundException":
                    return None
                raise


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def for_lab(cloud: Cloud, settings: Settings, state: LabState | None) -> Deadlines:
    account = state.account if state and state.account else cloud.caller()["account"]
    return Deadlines(cloud, settings.name, settings.stack_name, account)


# -- up ------------------------------------------------------------------------------------------
def check(settings: Settings) -> timedelta | None:
    """The TTL `up` will use, checked before anything is created."""
    return dl.parse_ttl(settings.ttl)


def start(ctx: UpContext) -> None:
    """A new stack: its deadline, set at once (right after CreateStack, before the instances bill)."""
    settings, state = ctx.settings, ctx.lab.state
    ttl = dl.parse_ttl(settings.ttl)
    ctx.seen["deadline"] = "set"
    deadlines = for_lab(ctx.cloud, settings, state)
    if ttl is None:
        deadlines.remove()  # a previous lab's, by the same name
        _record(state, None, None)
        ctx.lab.save()
        ctx.detail("no deadline (--ttl none): the lab runs until `invoke down`")
        return
    if not _role_created(ctx, deadlines):
        return  # the stack failed first; its own wait reports why, and it bills nothing
    when = dl.deadline_after(ttl)
    deadlines.set(when)
    _record(state, dl.format_ttl(ttl), when)
    ctx.lab.save()
    ctx.detail(f"deadline {dl.local_time(when)}: schedule {deadlines.name} deletes the stack then")


def _role_created(ctx: UpContext, deadlines: Deadlines) -> bool:
    """Wait for the stack's first resource, the deadline role (CreateSchedule needs it). Every
    other resource depends on it, so no instance runs before the deadline can be set."""

    def ready() -> str | None:
        if deadlines.role_exists():
            return "created"
        info = ctx.cloud.stack(ctx.lab.state.stack_id or ctx.settings.stack_name)
        return None if info is not None and info.status == "CREATE_IN_PROGRESS" else "stack-failed"

    outcome = wait_until(
        ready,
        timeout=ROLE_TIMEOUT,
        interval=5.0,
        what=f"the deadline role {deadlines.role_name}",
        on_wait=lambda seconds: ctx.note(f"waiting for the deadline role ({seconds:.0f}s)"),
    )
    return outcome == "created"


def ensure(ctx: UpContext) -> None:
    """A resumed lab keeps its deadline; one that lost its schedule (or never got it) gets one."""
    settings, state = ctx.settings, ctx.lab.state
    if ctx.seen.get("deadline") == "set":
        return
    if state.facts.get("ttl") == dl.NO_TTL:
        if "ttl" in settings.explicit and dl.parse_ttl(settings.ttl) is not None:
            ctx.progress.info(f"The lab has no deadline; `invoke extend --ttl {settings.ttl}` sets one.")
        return
    deadlines = for_lab(ctx.cloud, settings, state)
    due = deadlines.due()
    if due is not None:
        _record(state, state.facts.get("ttl") or settings.ttl, due)
        ctx.lab.save()
        if "ttl" in settings.explicit:
            ctx.progress.info(f"The lab keeps its deadline; `invoke extend --ttl {settings.ttl}` moves it.")
        return
    start(ctx)


def announce(ctx: UpContext) -> None:
    """The last line of `up`."""
    state, out = ctx.lab.state, ctx.progress
    when = recorded(state)
    if when is not None:
        out.info(f"Lab '{state.name}' {dl.countdown(when)}.")
    elif state.facts.get("ttl") == dl.NO_TTL:
        out.warn(no_deadline_warning(state.region, state.instance_type or ctx.settings.instance_type))


def no_deadline_warning(region: str, instance_type: str) -> str:
    cost = hourly_cost(region, instance_type)
    price = (
        f"about {cost.per_hour * 24:.2f} USD a day ({cost.per_hour * 24 * 30:.0f} USD a month, "
        f"on-demand prices of {PRICES_AS_OF})"
        if cost
        else "its instances' price for every hour"
    )
    return f"No deadline (ttl none): a forgotten lab costs {price}; run `invoke down` when you are done."


def _record(state: LabState, ttl: str | None, when: datetime | None) -> None:
    state.facts["ttl"] = ttl if ttl is not None else dl.NO_TTL
    state.facts["deadline"] = when.isoformat() if when else None


def recorded(state: LabState | None) -> datetime | None:
    value = state.facts.get("deadline") if state else None
    return datetime.fromisoformat(value) if value else None


# -- extend --------------------------------------------------------------------------------------
def extend(settings: Settings, ttl_text: str | None, progress: Progress | None = None) -> None:
    out = progress or Progress()
    if ttl_text is not None:
        dl.parse_ttl(ttl_text)  # a mistake is reported before any AWS call
    state = load_state(settings.lab_dir)
    region = state.region if state else settings.region
    cloud = Cloud(region, settings.profile)
    info = cloud.stack(state.stack_id if state and state.stack_id else settings.stack_name)
    if info is None or info.status == "DELETE_COMPLETE":
        if settle_expired(settings, out):
            raise LabError(
                f"lab '{settings.name}' is gone: its deadline deleted it", "`invoke up` creates a new one"
            )
        raise LabError(
            f"no lab '{settings.name}' in {region}: nothing to extend",
            "`invoke up` creates one; `invoke status --all` lists every lab",
        )
    from lab.steps.stack import require_ours

    require_ours(info, cloud.caller()["arn"])
    if info.status not in ("CREATE_IN_PROGRESS", "CREATE_COMPLETE"):
        raise LabError(
            f"stack {info.name} is {info.status}: there is no running lab to extend",
            "`invoke down` removes what is left; `invoke up` creates a new lab",
        )
    lab_ttl = state.facts.get("ttl") if state else None
    ttl = dl.parse_ttl(ttl_text or (lab_ttl if lab_ttl not in (None, dl.NO_TTL) else settings.ttl))
    deadlines = for_lab(cloud, settings, state)
    if not deadlines.role_exists():
        raise LabError(
            f"stack {info.name} has no deadline role {deadlines.role_name} (created by an older toolkit?)",
            "`invoke down` and `invoke up` again to get a lab with a deadline",
        )
    if ttl is None:
        deadlines.remove()
        if state:
            _record(state, None, None)
            save_state(settings.lab_dir, state)
        out.warn(no_deadline_warning(region, info.parameters.get("InstanceType") or settings.instance_type))
        return
    when = dl.deadline_after(ttl)
    deadlines.set(when)
    if state:  # the lab keeps the TTL it was created with: a later `extend` gives that again
        _record(state, lab_ttl if lab_ttl not in (None, dl.NO_TTL) else dl.format_ttl(ttl), when)
        save_state(settings.lab_dir, state)
    out.info(f"Lab '{settings.name}' {dl.countdown(when)}.")


# -- after the deadline ----------------------------------------------------------------------------
def settle_expired(settings: Settings, progress: Progress) -> bool:
    """A lab whose schedule deleted it: say so, then clean up what is left as `down` would.

    The signs: local state with a deadline, the stack deleted, and the schedule gone too (it
    deletes itself after it fires; `invoke down` would have archived the state)."""
    try:
        state = load_state(settings.lab_dir)
    except StateDamaged:
        return False  # no record of a deadline to go by; the command reads the stack instead
    when = recorded(state)
    if state is None or when is None or not state.stack_id:
        return False
    cloud = Cloud(state.region, settings.profile)
    info = cloud.stack(state.stack_id)
    if info is not None and info.status != "DELETE_COMPLETE":
        return False
    if for_lab(cloud, settings, state).schedule() is not None:
        return False  # deleted by someone else before the deadline; `down` removes the schedule
    deleted = _deletion_time(cloud, state.stack_id) or when
    progress.info(
        f"Lab '{settings.name}' was deleted by its TTL at {dl.local_time(deleted)} "
        f"(stack {state.stack_name}); cleaning up what it left here."
    )
    from lab.down import down

    down(settings, progress)
    return True


def _deletion_time(cloud: Cloud, stack_id: str) -> datetime | None:
    with aws_errors():
        try:
            stacks = cloud.cfn.describe_stacks(StackName=stack_id)["Stacks"]
        except ClientError:
            return None
    return stacks[0].get("DeletionTime") if stacks else None


# -- down ----------------------------------------------------------------------------------------
def before_delete(cloud: Cloud, settings: Settings, state: LabState | None, progress: Progress) -> None:
    """The schedule goes first, so it cannot fire while `down` deletes the stack."""
    deadlines = for_lab(cloud, settings, state)
    if deadlines.remove():
        progress.info(f"  deleted schedule {deadlines.name}")


def left_behind(cloud: Cloud, settings: Settings, state: LabState | None) -> list[str]:
    """What of the deadline is still there after the stack's deletion (down's leftover check)."""
    deadlines = for_lab(cloud, settings, state)
    left = []
    if deadlines.schedule() is not None:
        left.append(f"schedule {deadlines.name}")
    if deadlines.role_exists():
        left.append(f"role {deadlines.role_name}")
    return left


# -- status and plan -----------------------------------------------------------------------------
def status_line(cloud: Cloud, settings: Settings, state: LabState | None, info: StackInfo) -> str:
    due = for_lab(cloud, settings, state).due()
    instance_type = info.parameters.get("InstanceType") or settings.instance_type
    if due is None:
        if state and state.facts.get("ttl") == dl.NO_TTL:
            return "Deadline: none. " + no_deadline_warning(cloud.region, instance_type)
        return "Deadline: none (no schedule found): `invoke extend` sets one, `invoke down` deletes the lab"
    if state and recorded(state) != due:
        _record(state, state.facts.get("ttl") or settings.ttl, due)
        save_state(settings.lab_dir, state)
    cost = hourly_cost(cloud.region, instance_type)
    hours = max(0.0, (due - dl.utc_now()).total_seconds() / 3600)
    more = f"; about {cost.per_hour * hours:.2f} USD more until then" if cost else ""
    return f"Deadline: {dl.countdown(due)}{more}"


NONE_CELL = "none (!)"


def deadline_cell(cloud: Cloud, stack: StackInfo) -> str:
    """`status --all`: each lab's deadline, read from its schedule."""
    lab_name = stack.tags.get("lab:name", "")
    owner_account = stack.stack_id.split(":")[4] if stack.stack_id.count(":") >= 5 else ""
    due = Deadlines(cloud, lab_name, stack.name, owner_account).due() if lab_name and owner_account else None
    return f"{dl.local_time(due)} (in {dl.time_left(due)})" if due else NONE_CELL


def plan_line(settings: Settings) -> str:
    ttl = dl.parse_ttl(settings.ttl)
    if ttl is None:
        return "Deadline: none. " + no_deadline_warning(settings.region, settings.instance_type)
    when = dl.deadline_after(ttl)
    cost = hourly_cost(settings.region, settings.instance_type)
    price = f"; cost up to it about {cost.per_hour * ttl.total_seconds() / 3600:.2f} USD" if cost else ""
    return (
        f"Deadline: the lab deletes itself {dl.format_ttl(ttl)} after `invoke up` "
        f"(at {dl.local_time(when)} if started now){price}; `invoke extend` moves it"
    )
