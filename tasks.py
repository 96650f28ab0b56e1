"""Invoke tasks: parse arguments, call `lab`. Nothing else lives here.

`invoke --list` shows the commands; `invoke --help TASK` shows a task's flags.
"""

from __future__ import annotations

import sys

from invoke import task

from lab import access, cli, expiry
from lab.down import down as lab_down
from lab.status import plan as lab_plan
from lab.status import status as lab_status
from lab.up import up as lab_up

COMMON = {
    "name": "lab name (default: egress; env LAB_NAME)",
    "region": "AWS region (default: ap-northeast-2; env LAB_REGION)",
    "profile": "AWS profile from your AWS config (env AWS_PROFILE)",
    "debug": "show tracebacks on errors (env LAB_DEBUG=1)",
}
TTL_HELP = "lifetime: the lab deletes itself after it (90m, 4h, 2d; default 6h; none; env LAB_TTL)"


def _help(**extra: str) -> dict[str, str]:
    return {**COMMON, **extra}


def _local_help(**extra: str) -> dict[str, str]:
    """Help for tasks that act on an existing lab's nodes: no AWS flags."""
    return {"name": COMMON["name"], "debug": COMMON["debug"], **extra}


@task(
    help=_help(
        until="stop after this step (preflight, key-pair, stack, ssh, cloud-init, nodes-ready, istioctl, istio, addons, netshoot)",
        ssh_cidr="CIDR allowed to SSH and reach NodePorts (default: your public IP /32)",
        allow_wide_ssh="confirm an SSH CIDR wider than /24",
        key_name="use this existing EC2 key pair (with --key-file)",
        key_file="private key file of --key-name",
        instance_type="EC2 instance type of the four nodes (default t3.medium)",
        k3s_version="k3s version (default v1.30.5+k3s1)",
        istio_version="Istio version (default 1.23.2)",
        ttl=TTL_HELP,
        rebuild="replace this node with a new instance first (k3s-s, k3s-w1, k3s-w2 or testpc)",
    )
)
def up(
    c,
    name=None,
    region=None,
    profile=None,
    until=None,
    ssh_cidr=None,
    allow_wide_ssh=False,
    key_name=None,
    key_file=None,
    instance_type=None,
    k3s_version=None,
    istio_version=None,
    ttl=None,
    rebuild=None,
    debug=False,
):
    """Create the lab: the k3s stack, Istio (demo profile), Kiali and the netshoot pods."""
    settings = cli.settings_from(
        name=name,
        region=region,
        profile=profile,
        ssh_cidr=ssh_cidr,
        allow_wide_ssh=allow_wide_ssh or None,
        key_name=key_name,
        key_file=key_file,
        instance_type=instance_type,
        k3s_version=k3s_version,
        istio_version=istio_version,
        ttl=ttl,
    )
    cli.run(lambda: lab_up(settings, until=until, rebuild=rebuild) and None, debug)


@task(help=_help(ttl="new lifetime from now (default: the lab's TTL); none removes the deadline"))
def extend(c, name=None, region=None, profile=None, ttl=None, debug=False):
    """Move the lab's deadline: it deletes itself TTL from now (default: the TTL it was created with)."""
    settings = cli.settings_from(name=name, region=region, profile=profile)
    cli.run(lambda: expiry.extend(settings, ttl), debug)


@task(help=_help())
def down(c, name=None, region=None, profile=None, debug=False):
    """Delete the lab's stack and key pair, prove nothing is left running, archive the local state."""
    settings = cli.settings_from(name=name, region=region, profile=profile)
    cli.run(lambda: lab_down(settings), debug)


@task(help=_help(all="list every lab stack of this toolkit in the region"))
def status(c, name=None, region=None, profile=None, all=False, debug=False):
    """Show the lab's stack, nodes, versions and cost so far."""
    settings = cli.settings_from(name=name, region=region, profile=profile)
    cli.run(lambda: lab_status(settings, show_all=all), debug)


@task(help=_local_help(yes="do it without asking (needed when not run from a terminal)"))
def reset(c, yes=False, name=None, debug=False):
    """Put the lab back to how `up` left it: lists what it removes or restores, then does it."""
    from lab.reset import reset as lab_reset

    settings = cli.settings_from(name=name)
    cli.run(lambda: lab_reset(settings, yes=yes), debug)


@task(help=_help(instance_type="EC2 instance type to price (default t3.medium)", ttl=TTL_HELP))
def plan(c, name=None, region=None, profile=None, instance_type=None, ttl=None, debug=False):
    """Show what `up` would create, what it costs per hour, and its deadline; works offline."""
    settings = cli.settings_from(
        name=name, region=region, profile=profile, instance_type=instance_type, ttl=ttl
    )
    cli.run(lambda: lab_plan(settings), debug)


@task(help=_local_help(node="node name: k3s-s, k3s-w1, k3s-w2 or testpc"))
def ssh(c, node="k3s-s", name=None, debug=False):
    """Open a shell on a node (default k3s-s), or run a command there: `invoke ssh --node k3s-w1 -- hostname`."""
    settings = cli.settings_from(name=name)
    cli.run(lambda: access.ssh(settings, node, _remainder()), debug)


@task(help=_local_help())
def kubectl(c, name=None, debug=False):
    """Run kubectl on k3s-s: `invoke kubectl -- get pods -A`; stdin and local -f files go along."""
    args = _remainder() or ["get", "pods", "-A"]
    settings = cli.settings_from(name=name)
    cli.run(lambda: access.kubectl(settings, args), debug)


@task(help=_local_help(port="local port of the tunnel (default 20001; 0 picks a free one)"))
def kiali(c, name=None, port="20001", debug=False):
    """Open an SSH tunnel to Kiali on localhost:20001 until Ctrl-C."""
    from lab.tunnel import parse_port

    local_port = cli.boundary(lambda: parse_port(port), debug)  # before any work
    settings = cli.settings_from(name=name)
    cli.run(lambda: access.kiali(settings, local_port), debug)


@task(help=_local_help())
def logs(c, name=None, debug=False):
    """Collect an evidence bundle (cloud-init, k3s journals, pods, events, Istio logs) from every node."""
    settings = cli.settings_from(name=name)
    cli.run(lambda: access.logs(settings), debug)


def _remainder() -> list[str]:
    """Arguments after `--` (Invoke has no optional positionals): `invoke analyze -- a.yaml dir/`."""
    return sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []


PATH_HELP = "manifest file(s) or folder(s), comma-separated (more can follow --)"


def _paths(path: str | None) -> list[str]:
    return [p for p in (path or "").split(",") if p] + _remainder()


@task(
    klass=cli.positional_or("scenario"),
    positional=["path"],
    help=_local_help(
        path=PATH_HELP,
        scenario="analyze a scenario's manifests instead",
        format="table (default) or json",
        live="also read the running lab and merge `istioctl analyze -A`",
    ),
)
def analyze(c, path=None, scenario=None, format="table", live=False, name=None, debug=False):
    """Check egress manifests offline: Kiali/istioctl codes plus the lab's own; exit 1 on an error."""
    from lab.analyzer.cli import run_analyze

    settings = cli.settings_from(name=name)
    cli.run(lambda: run_analyze(_paths(path), scenario, format, live, settings), debug)


@task(
    klass=cli.positional_or("scenario"),
    positional=["path"],
    help=_local_help(
        path=PATH_HELP,
        scenario="explain with a scenario's manifests",
        from_="client pod (default pod1)",
        to="URL of the request, e.g. https://en.wikipedia.org/",
        format="text (default) or dot (Graphviz)",
        expect="exit 1 unless the predicted verdict is this one: egress-gateway, passthrough, direct, "
        "blackhole or dropped",
    ),
)
def explain(
    c, path=None, scenario=None, from_="pod1", to=None, format="text", expect=None, name=None, debug=False
):
    """Print the hop-by-hop path a request takes, and the resource that decided each hop."""
    from lab.analyzer.cli import run_explain

    def action() -> int:
        if not to:
            raise cli.UsageError("explain needs --to URL", "for example --to https://en.wikipedia.org/")
        return run_explain(_paths(path), scenario, from_, to, format, expect)

    cli.run(action, debug)


@task(help=_local_help())
def scenarios(c, name=None, debug=False):
    """List the scenarios with their one-line titles."""
    from lab.scenario.cli import run_list

    settings = cli.settings_from(name=name)
    cli.run(lambda: run_list(settings), debug)


@task(
    klass=cli.positional_or("all", second_after="new"),
    positional=["scenario", "new_name"],
    help=_local_help(
        scenario="scenario name (see `invoke scenarios`), a scenario file's path, or `new`",
        new_name="after `new`: the name of the scenario to write in the current folder",
        from_="with `new`: the scenario (name or path) to start from (default egress-gateway-http)",
        all="run every scenario in order",
        keep="leave the applied config in place for inspection (no cleanup)",
        junit="write JUnit XML to this file, one testcase per assertion",
    ),
)
def scenario(
    c, scenario=None, all=False, keep=False, junit=None, name=None, debug=False, new_name=None, from_=None
):
    """Run a scenario: apply, assert on curl and on the path's evidence, clean up.

    `invoke scenario PATH` runs a scenario file of your own; `invoke scenario new NAME [--from X]`
    writes one (docs/scenarios.md describes the format)."""
    from lab.scenario.cli import run_new, run_scenarios

    if scenario == "new":
        cli.run(lambda: run_new(new_name or "", from_), debug)
        return
    settings = cli.settings_from(name=name)
    cli.run(lambda: run_scenarios(settings, [scenario] if scenario else [], all, keep, junit), debug)


@task(
    klass=cli.positional_or("to"),  # PATH may be left out when --to is given (then: what is applied)
    positional=["path"],
    help=_local_help(
        path=PATH_HELP + "; none: trace what is applied now",
        scenario="apply a scenario's manifests (and mesh setting) for the trace",
        to="URL of the request, e.g. https://en.wikipedia.org/",
        from_="client pod, POD or NAMESPACE/POD (default default/pod1)",
        keep="leave the applied config in place (no cleanup)",
        expect="exit 1 unless the verdict is this one (egress-gateway, passthrough, direct, blackhole, no-evidence, dropped)",
        format="text (default) or json",
        logs="read saved logs from this folder (NAMESPACE.POD.log files) instead of a lab",
        remote_ip="with --logs: the IP the client connected to, when known",
    ),
)
def trace(
    c,
    path=None,
    scenario=None,
    to=None,
    from_=None,
    keep=False,
    expect=None,
    format="text",
    logs=None,
    remote_ip=None,
    name=None,
    debug=False,
):
    """Send one request and show the path it really took, from the proxies' access logs."""
    from lab.trace.cli import run_live, run_offline

    if logs:
        cli.run(lambda: run_offline(logs, to, from_, remote_ip, format, expect), debug)
        return
    settings = cli.settings_from(name=name)
    cli.run(lambda: run_live(settings, _paths(path), scenario, to, from_, keep, expect, format), debug)
