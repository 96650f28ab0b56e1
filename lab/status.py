"""`invoke status` (what is running and what it costs) and `invoke plan` (offline: what up would create)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

from rich.table import Table

from lab import expiry
from lab.cloud import TAG_NAME, TAG_OWNER, Cloud
from lab.config import Settings
from lab.lab import NODE_NAMES
from lab.pricing import PRICES_AS_OF, Cost, hourly_cost
from lab.progress import Progress
from lab.recovery import live_stack, local_state, state_from_stack
from lab.steps.addons import ADDON_TITLES
from lab.template import TEMPLATE, check_instance_type, load_template


def status(settings: Settings, show_all: bool = False, progress: Progress | None = None) -> None:
    out = progress or Progress()
    if show_all:
        _all_labs(Cloud(settings.region, settings.profile), settings, out)
        return
    if expiry.settle_expired(settings, out):
        return
    state, why = local_state(settings, out)
    local = state is not None
    region = state.region if state else settings.region
    cloud = Cloud(region, settings.profile)
    info = cloud.stack(state.stack_id if state and state.stack_id else settings.stack_name)
    if state is None and info is not None and live_stack(settings, cloud) is not None:
        state = state_from_stack(settings, cloud, info)  # read only: `up` writes it back
        reason = "state.json is damaged" if why == "damaged" else f"no local state in {settings.lab_dir}"
        out.info(f"{reason}: read lab '{settings.name}' from stack {info.name}")
    if info is None or info.status == "DELETE_COMPLETE":
        out.info(
            f"No lab '{settings.name}' in {region}. `invoke up` creates one; `invoke status --all` lists every lab."
        )
        return
    hours = _hours_since(info.created)
    out.info(f"Lab '{settings.name}': stack {info.name} {info.status}, region {region}, age {_age(hours)}")
    ids = cloud.instance_names(info.stack_id)
    states = cloud.instance_states(list(ids.values()))
    nodes = Table("node", "public", "private", "instance", "state", box=None, pad_edge=False)
    for name in NODE_NAMES:
        node = state.nodes.get(name) if state else None
        instance = ids.get(name, node.instance_id if node else None)
        nodes.add_row(
            name,
            node.public_ip if node else "-",
            node.private_ip if node else "-",
            instance or "-",
            states.get(instance or "", "unknown"),
        )
    out.console.print(nodes)
    if state:
        versions = ", ".join(f"{k} {v}" for k, v in sorted(state.versions.items()))
        out.info(f"Versions: {versions}")
        done = [f"{n} {'✓' if r.done else '✗'} {r.seconds:.0f}s" for n, r in state.steps.items()]
        out.info(f"Steps: {', '.join(done) or 'none recorded'}")
        if state.pending_cleanup:
            out.warn(
                f"pending cleanup: {state.pending_cleanup.get('scenario', '?')} was interrupted; "
                "the next `invoke scenario`, `trace` or `reset` finishes it"
            )
    instance_type = info.parameters.get("InstanceType") or settings.instance_type
    cost = hourly_cost(region, instance_type)
    out.info(_cost_line(cost, instance_type, hours))
    # a state read from the stack is not written back here (`up` does that): no record to update
    out.info(expiry.status_line(cloud, settings, state if local else None, info))


def _all_labs(cloud: Cloud, settings: Settings, out: Progress) -> None:
    stacks = cloud.lab_stacks()
    if not stacks:
        out.info(f"No lab stacks of this toolkit in {cloud.region}.")
        return
    table = Table("lab", "stack", "status", "age", "owner", "USD/h", "deletes at", box=None, pad_edge=False)
    deadlines = [expiry.deadline_cell(cloud, stack) for stack in stacks]
    for stack, deadline in zip(stacks, deadlines, strict=True):
        cost = hourly_cost(cloud.region, stack.parameters.get("InstanceType", settings.instance_type))
        table.add_row(
            stack.tags.get(TAG_NAME, "?"),
            stack.name,
            stack.status,
            _age(_hours_since(stack.created)),
            stack.tags.get(TAG_OWNER, "?"),
            f"{cost.per_hour:.3f}" if cost else "?",
            deadline,
        )
    out.console.print(table)
    out.info(f"{len(stacks)} lab(s) of this toolkit in {cloud.region}; `invoke down --name LAB` deletes one.")
    if expiry.NONE_CELL in deadlines:
        out.warn(f"labs marked '{expiry.NONE_CELL}' have no deadline: they bill until `invoke down --name LAB`")


def plan(settings: Settings, progress: Progress | None = None) -> None:
    """What `up` would create; offline, with no credentials."""
    out = progress or Progress()
    check_instance_type(settings.instance_type)
    expiry.check(settings)
    template = load_template()
    resources = template["Resources"]
    out.info(
        f"Plan for lab '{settings.name}' in {settings.region} (stack {settings.stack_name}); nothing is created."
    )
    kinds = Counter(r["Type"] for r in resources.values())
    table = Table("resource type", "count", box=None, pad_edge=False)
    for kind, count in sorted(kinds.items()):
        table.add_row(kind, str(count))
    out.console.print(table)
    nodes = Table("node", "private address", "role", "instance type", box=None, pad_edge=False)
    for resource in resources.values():
        if resource["Type"] != "AWS::EC2::Instance":
            continue
        props = resource["Properties"]
        name = next((t["Value"] for t in props.get("Tags", []) if t["Key"] == "Name"), "?")
        role = {"k3s-s": "k3s server", "testpc": "plain host outside the cluster"}.get(name, "k3s agent")
        nodes.add_row(name, str(props.get("PrivateIpAddress", "?")), role, settings.instance_type)
    out.console.print(nodes)
    out.info(
        f"Versions: k3s {settings.k3s_version}, Istio {settings.istio_version} (demo profile), "
        f"netshoot {settings.netshoot_image}"
    )
    out.info(f"Add-ons: {ADDON_TITLES} from Istio's samples/addons (not Loki, which the folder also holds)")
    out.info(f"SSH and NodePorts open to: {settings.ssh_cidr or 'your public IP /32 (detected by up)'}")
    out.info(_cost_line(hourly_cost(settings.region, settings.instance_type), settings.instance_type, None))
    out.info(expiry.plan_line(settings))
    out.info(f"Template: {TEMPLATE}")


def _cost_line(cost: Cost | None, instance_type: str, hours: float | None) -> str:
    if cost is None:
        return f"Cost: {instance_type} is not in the price table (prices of {PRICES_AS_OF})"
    line = (
        f"Cost: {cost.per_hour:.3f} USD/h ({cost.instances:.3f} for 4 × {instance_type}, {cost.ipv4:.3f} for 4 public "
        f"IPv4, {cost.volumes:.3f} for 4 × 30 GiB gp3), about {cost.per_hour * 24:.2f} USD/day"
    )
    if hours is not None:
        line += f"; so far {cost.per_hour * hours:.2f} USD"
    return line + f" (on-demand prices of {PRICES_AS_OF}, {cost.region_used})"


def _hours_since(when: datetime) -> float:
    return max(0.0, (datetime.now(timezone.utc) - when).total_seconds() / 3600)


def _age(hours: float) -> str:
    minutes = int(hours * 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
