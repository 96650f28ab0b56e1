"""Simulated `cloud-init`, `sudo` and `journalctl`, and the boot files they read."""

from __future__ import annotations

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
    lines.append(f"{CLOUD_INIT} finished at {when(0)}. Datasource DataSourceEc2Local.  Up 58.31 seconds")
    return "\n".join(lines) + "\n"


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


def cloud_init(ctx, args: list[str]) -> int:
    if not args or args[0] != "status":
        print("usage: cloud-init status [--wait] [--long]", file=sys.stderr)
        return 2
    info = ctx.layout.instance(ctx.node) or {"booted_at": time.time()}
    done_at = info["booted_at"] + ctx.config.delays.cloud_init
    # `cloud-init status` reports the boot's result (/run/cloud-init/result.json); running the
    # boot script again by hand does not change it (canonical/cloud-init cloudinit/cmd/status.py).
    failed = failed_at_boot(ctx.layout, ctx.config, ctx.node)
    if "--wait" in args or "-w" in args:
        dots = False
        while (left := done_at - time.time()) > 0:
            print(".", end="", flush=True)
            dots = True
            time.sleep(min(left, 0.25))
        if dots:
            print()
    if time.time() < done_at:
        print("status: running")
        return 0
    print(f"status: {'error' if failed else 'done'}")
    if "--long" in args:
        print("extended_status: " + ("error - done" if failed else "done"))
        print("boot_status_code: enabled-by-generator")
        print("detail:\nDataSourceEc2Local")
        if failed:
            print(
                "errors:\n\t('scripts_user', RuntimeError('Runparts: 1 failures (part-001) in 1 "
                "attempted commands'))"
            )
    return 1 if failed else 0


def sudo(ctx, args: list[str]) -> int:
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
        return subprocess.run(mapped).returncode
    except FileNotFoundError:
        print(f"sudo: {args[0]}: command not found", file=sys.stderr)
        return 1


def journalctl(ctx, args: list[str]) -> int:
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
