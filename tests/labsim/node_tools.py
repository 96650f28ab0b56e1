"""Simulated `cloud-init`, `sudo` and `journalctl`, and the boot files they read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

from .config import CLUSTER_NODES, SERVER, Layout

CLOUD_INIT = "Cloud-init v. 24.1.3-0ubuntu1~22.04.5"
DEFAULT_K3S = "v1.30.5+k3s1"
# absolute paths `sudo` reads from the node's private root rather than the host's
PRIVATE_PREFIXES = ("/var/log/", "/etc/rancher/", "/var/lib/cloud/")


def _stamp(ts: float, fmt: str) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime(fmt)


def cloud_init_log(node: str, booted_at: float, k3s_version: str, failed: bool) -> str:
    when = lambda offset: _stamp(booted_at + offset, "%a, %d %b %Y %H:%M:%S +0000")  # noqa: E731
    lines = [
        f"{CLOUD_INIT} running 'init-local' at {when(-40)}. Up 6.12 seconds.",
        f"{CLOUD_INIT} running 'init' at {when(-39)}. Up 7.03 seconds.",
        "ci-info: ++++++++++++++++++++++++++Net device info++++++++++++++++++++++++++",
        "ci-info: | Device | Up |  Address   |      Mask     | Scope  |     Hw-Address    |",
        "ci-info: |  ens5  | True | 192.168.10.10 | 255.255.255.0 | global | 02:8e:1c:4a:2b:11 |",
        f"{CLOUD_INIT} running 'modules:config' at {when(-30)}. Up 16.40 seconds.",
        f"{CLOUD_INIT} running 'modules:final' at {when(-29)}. Up 17.02 seconds.",
    ]
    if node in CLUSTER_NODES:
        unit = "k3s" if node == SERVER else "k3s-agent"
        lines += ["[INFO]  Finding release for channel stable"]
        if failed:
            lines += [
                "curl: (28) Failed to connect to update.k3s.io port 443 after 130510 ms: "
                "Couldn't connect to server",
                "[ERROR]  Download failed",
                f"{_stamp(booted_at, '%Y-%m-%d %H:%M:%S,123')} - cc_scripts_user.py[WARNING]: "
                "Failed to run module scripts_user (scripts in /var/lib/cloud/instance/scripts)",
                f"{_stamp(booted_at, '%Y-%m-%d %H:%M:%S,124')} - log_util.py[WARNING]: "
                "Running module scripts_user (<module 'cloudinit.config.cc_scripts_user' from "
                "'/usr/lib/python3/dist-packages/cloudinit/config/cc_scripts_user.py'>) failed",
            ]
        else:
            base = f"https://github.com/k3s-io/k3s/releases/download/{k3s_version}"
            lines += [
                f"[INFO]  Using {k3s_version} as release",
                f"[INFO]  Downloading hash {base}/sha256sum-amd64.txt",
                f"[INFO]  Downloading binary {base}/k3s",
                "[INFO]  Verifying binary download",
                "[INFO]  Installing k3s to /usr/local/bin/k3s",
                "[INFO]  Creating /usr/local/bin/kubectl symlink to k3s",
                f"[INFO]  systemd: Creating service file /etc/systemd/system/{unit}.service",
                f"[INFO]  systemd: Enabling {unit} unit",
                f"[INFO]  systemd: Starting {unit}",
            ]
    else:
        lines += ["Reading package lists...", "Setting up curl (7.81.0-1ubuntu1.18) ..."]
    return "\n".join(lines) + "\n"


def finished_line(booted_at: float, done_at: float) -> str:
    """cloud-init's final stage writes this last line to the output log, error or not."""
    stamp = _stamp(done_at, "%a, %d %b %Y %H:%M:%S +0000")
    return f"{CLOUD_INIT} finished at {stamp}. Datasource DataSourceEc2Local.  Up {done_at - booted_at + 18:.2f} seconds\n"


def write_boot_files(layout: Layout, node: str, info: dict, failed: bool) -> None:
    root = layout.node_root(node)
    (root / "var/log").mkdir(parents=True, exist_ok=True)
    text = cloud_init_log(node, info["booted_at"], info["k3s_version"], failed)
    (root / "var/log/cloud-init-output.log").write_text(text)
    if node == SERVER and not failed:
        (root / "etc/rancher/k3s").mkdir(parents=True, exist_ok=True)
        (root / "etc/rancher/k3s/k3s.yaml").write_text(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: "
            "https://127.0.0.1:6443\n  name: default\ncurrent-context: default\n"
        )


def instances_file(layout: Layout, node: str):
    """Every instance id the node had, oldest first (outside the node's folder: a new disk wipes that)."""
    return layout.nodes_dir / f"{node}.instances"


def failed_at_boot(layout: Layout, config, node: str) -> bool:
    """Whether this instance's first boot failed (fault `cloud_init_fail`)."""
    if node not in config.faults.cloud_init_fail:
        return False
    if config.faults.cloud_init_fault != "first-instance":
        return True
    info = layout.instance(node) or {}
    try:
        first = instances_file(layout, node).read_text().split()[0]
    except (OSError, IndexError):
        return True
    return info.get("instance_id", first) == first


def k3s_missing(layout: Layout, config, node: str) -> bool:
    """A failed boot leaves k3s uninstalled until a re-run of the boot script succeeds."""
    return failed_at_boot(layout, config, node) and not (layout.node_dir(node) / RERUN_OK).exists()


RERUN_OK = "boot-script-rerun-ok"
# Where cloud-init keeps the user data's shell script and runs it from (module scripts_user):
# canonical/cloud-init 24.1 cloudinit/config/cc_scripts_user.py runs /var/lib/cloud/instance/scripts/*,
# a `#!` user data being saved there as part-001. Here it is a stand-in that runs `boot_script`.
BOOT_SCRIPT = "var/lib/cloud/instance/scripts/part-001"


def write_boot_script(layout: Layout, node: str, tools_dir) -> None:
    path = layout.node_root(node) / BOOT_SCRIPT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n# Stand-in for the instance's user data (tests/labsim): the real one installs k3s.\n"
        f'exec "${{LABSIM_PYTHON:-python3}}" "{tools_dir}/_run.py" boot-script "$@"\n'
    )
    path.chmod(0o755)


def boot_script(ctx, args: list[str]) -> int:
    """The user data run again by hand: it fails as the boot did, unless the fault was transient."""
    fault = ctx.config.faults.cloud_init_fault
    info = ctx.layout.instance(ctx.node) or {"booted_at": time.time(), "k3s_version": DEFAULT_K3S}
    if failed_at_boot(ctx.layout, ctx.config, ctx.node) and fault != "transient":
        print("[INFO]  Finding release for channel stable")
        print("curl: (28) Failed to connect to update.k3s.io port 443 after 130510 ms: Couldn't connect to server")
        print("[ERROR]  Download failed")
        return 1
    if ctx.node in CLUSTER_NODES:
        version = info["k3s_version"]
        unit = "k3s" if ctx.node == SERVER else "k3s-agent"
        print(f"[INFO]  Using {version} as release")
        print("[INFO]  Installing k3s to /usr/local/bin/k3s")
        print(f"[INFO]  systemd: Starting {unit}")
    (ctx.layout.node_dir(ctx.node) / RERUN_OK).touch()
    return 0


# What `cloud-init status` reports, after canonical/cloud-init at tag
# ubuntu/24.1.3-0ubuntu1_22.04.5 (the jammy package the nodes run), cloudinit/cmd/status.py:
# `print_status` builds the dict below from /run/cloud-init/status.json (its "v1" stages merged
# in, "datasource" lower-cased without the "DataSource" prefix), prints JSON with indent 2 and
# sorted keys; `--wait` polls every 0.25 s writing "." only in tabular format, and tabular
# output starts with "\n" under `--wait`. `handle_status_args` exits 1 when there are `errors`
# and 2 when there are only `recoverable_errors`, except that Ubuntu's
# debian/patches/status-retain-recoverable-error-exit-code.patch (LP: #2048522) makes that 0.
STAGES = ("init-local", "init", "modules-config", "modules-final")
# seconds into the boot each stage starts, as fractions of the whole (scripts_user, which runs
# the user data, is in modules-final and takes nearly all the time)
STAGE_STARTS = (0.0, 0.02, 0.05, 0.06)
RUN_PARTS_ERROR = "('scripts_user', RuntimeError('Runparts: 1 failures (['/var/lib/cloud/instance/scripts/part-001']) in 1 attempted commands'))"
DEPRECATION = (
    "Deprecated cloud-config provided: apt_update:  Default: ``false``. Deprecated in version 22.2. "
    "Use ``package_update`` instead."
)
LONG_TEMPLATE = (
    "extended_status: {extended}\nboot_status_code: {boot}\n{last_update}detail: {detail}\n"
    "errors:{errors}\nrecoverable_errors:{recoverable}"
)


def status_details(node: str, booted_at: float, took: float, now: float, faults, failed: bool) -> dict:
    """The dict `cloud-init status --format json` prints, at time `now`; `failed`: whether this
    instance's boot failed (`failed_at_boot`)."""
    degraded = node in faults.cloud_init_degraded
    done = now >= booted_at + took
    stages: dict = {}
    current = None
    for name, fraction in zip(STAGES, STAGE_STARTS, strict=True):
        start = booted_at + took * fraction
        if now < start:
            stages[name] = {"errors": [], "finished": None, "start": None}
            continue
        following = STAGE_STARTS[STAGES.index(name) + 1] if name != STAGES[-1] else 1.0
        end = booted_at + took * following
        finished = end if now >= end else None
        if finished is None:
            current = name
        stage = {"errors": [], "finished": finished, "recoverable_errors": {}, "start": start}
        if name == "modules-final" and finished is not None:
            if failed:
                stage["errors"] = [RUN_PARTS_ERROR]
            if degraded:
                stage["recoverable_errors"] = {"DEPRECATED": [DEPRECATION]}
        stages[name] = stage
    errors = [e for name in sorted(stages) for e in stages[name].get("errors", [])]
    recoverable: dict = {}
    for name in sorted(stages):
        for level, messages in stages[name].get("recoverable_errors", {}).items():
            recoverable.setdefault(level, []).extend(messages)
    running = "done" if done else "running"
    if errors:
        status, extended = "error", f"error - {running}"
    elif recoverable:
        status, extended = running, f"degraded {running}"
    else:
        status, extended = running, running
    latest = max([v for st in stages.values() for v in (st.get("start"), st.get("finished")) if v] or [0])
    return {
        "boot_status_code": "enabled-by-generator",
        "datasource": "ec2local",
        "detail": "DataSourceEc2Local",
        "errors": errors,
        "extended_status": extended,
        "last_update": _stamp(latest, "%a, %d %b %Y %H:%M:%S +0000") if latest else "",
        "recoverable_errors": recoverable,
        "stage": current,
        "status": status,
        **stages,
    }


def _print_tabular(details: dict, wait: bool, long: bool) -> None:
    print(f"{chr(10) if wait else ''}status: {details['status']}")
    if not long:
        return
    errors = "\n\t- " + "\n\t- ".join(details["errors"]) if details["errors"] else " []"
    recoverable = (
        "\n" + "\n".join(f"{k}:\n\t- " + "\n\t- ".join(v) for k, v in details["recoverable_errors"].items())
        if details["recoverable_errors"]
        else " {}"
    )
    last = f"last_update: {details['last_update']}\n" if details["last_update"] else ""
    print(
        LONG_TEMPLATE.format(
            extended=details["extended_status"],
            boot=details["boot_status_code"],
            last_update=last,
            detail=details["detail"],
            errors=errors,
            recoverable=recoverable,
        )
    )


def cloud_init(ctx, args: list[str]) -> int:
    if not args or args[0] != "status":
        print("usage: cloud-init status [--wait] [--long] [--format {json,tabular,yaml}]", file=sys.stderr)
        return 2
    info = ctx.layout.instance(ctx.node) or {"booted_at": time.time()}
    took = ctx.config.delays.cloud_init
    done_at = info["booted_at"] + took
    output = "tabular"
    for index, arg in enumerate(args):
        if arg.startswith("--format="):
            output = arg.split("=", 1)[1]
        elif arg == "--format" and index + 1 < len(args):
            output = args[index + 1]
    wait = "--wait" in args or "-w" in args
    # `cloud-init status` reports the boot's result (/run/cloud-init/result.json); running the
    # boot script again by hand does not change it (canonical/cloud-init cloudinit/cmd/status.py).
    failed = failed_at_boot(ctx.layout, ctx.config, ctx.node)
    if wait:
        while (left := done_at - time.time()) > 0:
            if output == "tabular":
                print(".", end="", flush=True)
            time.sleep(min(left, 0.25))
    details = status_details(ctx.node, info["booted_at"], took, time.time(), ctx.config.faults, failed)
    if time.time() >= done_at:
        _finish_log(ctx, info["booted_at"], done_at)
    if output == "json":
        print(json.dumps(details, indent=2, sort_keys=True, separators=(",", ": ")))
    else:
        _print_tabular(details, wait, "--long" in args or "-l" in args)
    if details["errors"]:
        return 1
    return 0  # degraded too: Ubuntu's status-retain-recoverable-error-exit-code patch


def _finish_log(ctx, booted_at: float, done_at: float) -> None:
    log = ctx.layout.node_root(ctx.node) / "var/log/cloud-init-output.log"
    try:
        text = log.read_text()
    except FileNotFoundError:
        return
    if " finished at " not in text:
        with log.open("a") as file:
            file.write(finished_line(booted_at, done_at))


# crictl as k3s ships it (k3s's install.sh links /usr/local/bin/crictl to k3s, which runs
# kubernetes-sigs/cri-tools against its own containerd socket). `pull` prints
# "Image is up to date for <image id>" when the image is in the store (cri-tools v1.30,
# cmd/crictl/image.go `pullImage`); without root the socket is refused.
CONTAINERD = "/run/k3s/containerd/containerd.sock"


def crictl(ctx, args: list[str]) -> int:
    import hashlib

    from .cluster import Cluster
    from .workloads import normalize_image, pull

    info = ctx.layout.instance(ctx.node)
    running = (
        info is not None
        and ctx.node in CLUSTER_NODES
        and not k3s_missing(ctx.layout, ctx.config, ctx.node)
        and time.time() >= info["booted_at"] + ctx.config.delays.cloud_init
    )
    if not running or os.environ.get("LABSIM_SUDO") != "1":
        reason = "no such file or directory" if not running else "permission denied"
        print(
            f'FATA[0000] validate service connection: validate CRI v1 image API for endpoint "unix://{CONTAINERD}": '
            f'rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: '
            f'dial unix {CONTAINERD}: connect: {reason}"',
            file=sys.stderr,
        )
        return 1
    if len(args) != 2 or args[0] != "pull":
        print("crictl (simulated): only `crictl pull IMAGE`", file=sys.stderr)
        return 1
    image = normalize_image(args[1])
    if ctx.node in ctx.config.faults.pull_rate_limited and image.startswith("docker.io/"):
        # what containerd reports when Docker Hub refuses an anonymous pull (HTTP 429)
        repository = image.removeprefix("docker.io/").rsplit(":", 1)[0]
        print(
            f'E1201 12:00:00.000000    4242 remote_image.go:180] "PullImage from image service failed" '
            f'err="rpc error: code = Unknown desc = failed to pull and unpack image \\"{image}\\": failed to '
            f"copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/"
            f"{repository}/manifests/sha256:0f3c: 429 Too Many Requests - Server message: toomanyrequests: "
            f'You have reached your pull rate limit."',
            file=sys.stderr,
        )
        print(
            f'FATA[0002] pulling image: failed to pull and unpack image "{image}": 429 Too Many Requests',
            file=sys.stderr,
        )
        return 1
    with Cluster(ctx.layout, ctx.config).edit() as state:
        ready_at = pull(state, ctx.node, image)
    while (left := ready_at - time.time()) > 0:
        time.sleep(min(left, 0.25))
    print(f"Image is up to date for sha256:{hashlib.sha256(image.encode()).hexdigest()}")
    return 0


def sudo(ctx, args: list[str]) -> int:
    # sudo 1.9 (Ubuntu 22.04): an unknown command is `sudo: X: command not found`, exit 1
    while args and args[0].startswith("-"):
        flag, args = args[0], args[1:]
        if flag in ("-u", "-g") and args:
            args = args[1:]
    if not args:
        print("usage: sudo [-u user] command", file=sys.stderr)
        return 1
    root = ctx.layout.node_root(ctx.node)
    mapped = [str(root) + arg if arg.startswith(PRIVATE_PREFIXES) else arg for arg in args]
    try:
        return subprocess.run(mapped, env={**os.environ, "LABSIM_SUDO": "1"}).returncode
    except FileNotFoundError:
        print(f"sudo: {args[0]}: command not found", file=sys.stderr)
        return 1


def journalctl(ctx, args: list[str]) -> int:
    # systemd 249 (Ubuntu 22.04) journalctl: `-- No entries --` and exit 0 for a unit with no logs;
    # k3s-io/k3s install.sh names the units k3s (server) and k3s-agent (agents)
    units = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg in ("-u", "--unit")]
    units += [arg.split("=", 1)[1] for arg in args if arg.startswith("--unit=")]
    info = ctx.layout.instance(ctx.node)
    expected = "k3s" if ctx.node == SERVER else "k3s-agent"
    if (
        not info
        or ctx.node not in CLUSTER_NODES
        or k3s_missing(ctx.layout, ctx.config, ctx.node)
        or expected not in [u.removesuffix(".service") for u in units]
    ):
        print("-- No entries --")
        return 0
    when = lambda offset: _stamp(info["booted_at"] + offset, "%b %d %H:%M:%S")  # noqa: E731
    iso = lambda offset: _stamp(info["booted_at"] + offset, "%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    role = "server" if ctx.node == SERVER else "agent"
    head = f"{ctx.node} {expected}[2345]:"
    lines = [
        f"{when(-12)} {ctx.node} systemd[1]: Starting Lightweight Kubernetes...",
        f'{when(-12)} {head} time="{iso(-12)}" level=info msg="Starting k3s {role} {info["k3s_version"]}"',
        f'{when(-10)} {head} time="{iso(-10)}" level=info msg="Running kubelet '
        f'--hostname-override={ctx.node} --node-ip={info.get("private_ip", "")}"',
        f"{when(-8)} {ctx.node} systemd[1]: Started Lightweight Kubernetes.",
        f'{when(-5)} {head} time="{iso(-5)}" level=info msg="Tunnel server egress proxy mode: agent"',
    ]
    print("\n".join(lines))
    return 0
