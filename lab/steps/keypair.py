"""key pair: use the user's, or create `lab-<name>` and keep its private key (mode 0600)."""

from __future__ import annotations

from pathlib import Path

from lab import TOOLKIT
from lab.cloud import TAG_CREATED_BY, TAG_NAME
from lab.errors import LabError
from lab.state import write_private
from lab.steps.base import Step, UpContext


class KeyPair(Step):
    name = "key-pair"
    title = "Preparing the SSH key pair"
    remote = False

    def done(self, ctx: UpContext) -> bool:
        spec = ctx.spec
        if not spec.key_created:
            return True  # the user's own: preflight checked it
        return Path(spec.key_file).exists() and ctx.cloud.key_pair(spec.key_name) is not None

    def run(self, ctx: UpContext) -> None:
        settings, state, spec = ctx.settings, ctx.lab.state, ctx.spec
        name, path = spec.key_name, Path(spec.key_file)
        if state.stack_id:
            # The instances accept only that key and AWS never shows a private key twice: deleting
            # the key pair would strand them. Only a new lab gets a usable key.
            raise LabError(
                f"lab '{settings.name}' is running but the private key of key pair '{name}' is not in {path}",
                "run `invoke down` (it needs no key), then `invoke up` for a new lab",
            )
        existing = ctx.cloud.key_pair(name)
        if existing is not None:
            raise LabError(
                f"key pair '{name}' exists in {spec.region} but its private key is not in {path}",
                f"delete it (`aws ec2 delete-key-pair --key-name {name}`) or pass --key-name/--key-file",
            )
        if path.exists():
            raise LabError(
                f"{path} exists but key pair '{name}' is not in {spec.region}",
                "move the file away if it belongs to a deleted lab, then run `invoke up` again",
            )
        material = ctx.cloud.create_key_pair(name, {TAG_NAME: settings.name, TAG_CREATED_BY: TOOLKIT})
        write_private(path, material)
        ctx.lab.save()
        ctx.detail(f"created key pair {name}; private key in {path} (mode 0600)")
