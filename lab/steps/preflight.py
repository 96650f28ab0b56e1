"""preflight: everything that can be wrong before anything is created."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from lab import spec
from lab.cloud import detect_public_ip
from lab.errors import UsageError
from lab.steps.base import Step, UpContext
from lab.template import check_instance_type

WIDEST_WITHOUT_CONFIRMATION = 24


def ssh_cidr(value: str, allow_wide: bool) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        raise UsageError(f"'{value}' is not an IPv4 CIDR", "use a form like 203.0.113.7/32") from None
    if network.prefixlen == 0:
        raise UsageError("SSH from 0.0.0.0/0 would open the lab to the whole internet", "use your IP /32")
    if network.prefixlen < WIDEST_WITHOUT_CONFIRMATION and not allow_wide:
        raise UsageError(
            f"SSH CIDR {network} is wider than /{WIDEST_WITHOUT_CONFIRMATION}",
            "pass --allow-wide-ssh to confirm, or use your own IP /32",
        )
    return str(network)


def key_file(path: str) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"key file {file} not found", "pass the private key of --key-name with --key-file")
    mode = stat.S_IMODE(file.stat().st_mode)
    if mode & 0o077:
        raise UsageError(f"key file {file} is readable by others (mode {mode:o})", f"run: chmod 600 {file}")
    return file.resolve()


class Preflight(Step):
    name = "preflight"
    title = "Checking credentials, region, key and SSH access"
    remote = False

    def run(self, ctx: UpContext) -> None:
        settings, state = ctx.settings, ctx.lab.state
        if bool(settings.key_name) != bool(settings.key_file):
            raise UsageError(
                "--key-name and --key-file go together", "pass both, or neither to let up create a key"
            )
        check_instance_type(settings.instance_type)
        if settings.key_file:
            key_file(settings.key_file)
        cidr = ssh_cidr(settings.ssh_cidr, settings.allow_wide_ssh) if settings.ssh_cidr else None
        caller = ctx.cloud.caller()
        state.owner, state.account = caller["arn"], caller["account"]
        ctx.detail(f"AWS account {caller['account']} as {caller['arn']}, region {ctx.cloud.region}")
        key_name = state.spec.key_name if state.spec and not state.spec.key_created else settings.key_name
        if key_name and ctx.cloud.key_pair(key_name) is None:
            raise UsageError(
                f"key pair '{key_name}' not found in {ctx.cloud.region}",
                "check `aws ec2 describe-key-pairs`, or omit --key-name to let up create one",
            )
        if state.spec is None or not state.stack_id:  # built once: a lab with a stack keeps its spec
            state.spec = spec.build(settings, cidr or f"{detect_public_ip()}/32", ctx.cloud.region)
            state.region = state.spec.region
        ctx.detail(f"SSH and NodePorts open to {state.spec.ssh_cidr} only")
