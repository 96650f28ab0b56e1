"""The lab spec: one frozen record of what a lab is, built once by preflight and saved whole in the
state. Steps, `down`, `status` and the template's parameters read it; `Settings` is only the
request (and local options such as the SSH port); resuming compares the request with the spec.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lab.config import Settings


@dataclass(frozen=True)
class LabSpec:
    name: str
    region: str
    instance_type: str
    k3s_version: str
    istio_version: str
    netshoot_image: str
    ssh_cidr: str
    key_name: str
    key_file: str  # the private key on this machine
    key_created: bool  # by `up` (deleted by `down`), or the user's own

    @property
    def stack_name(self) -> str:
        return f"lab-{self.name}"

    @property
    def versions(self) -> dict[str, str]:
        return {"k3s": self.k3s_version, "istio": self.istio_version, "netshoot": self.netshoot_image}


def build(settings: Settings, ssh_cidr: str, region: str | None = None) -> LabSpec:
    """The spec of a new lab: the request, with what preflight resolved (the SSH CIDR, the key)."""
    if settings.key_name:
        key_name, key_file, created = settings.key_name, _resolved(settings.key_file or ""), False
    else:
        own = settings.own_key_name
        key_name, key_file, created = own, _resolved(str(settings.lab_dir / f"{own}.pem")), True
    return LabSpec(
        name=settings.name,
        region=region or settings.region,
        instance_type=settings.instance_type,
        k3s_version=settings.k3s_version,
        istio_version=settings.istio_version,
        netshoot_image=settings.netshoot_image,
        ssh_cidr=ssh_cidr,
        key_name=key_name,
        key_file=key_file,
        key_created=created,
    )


def conflicts(spec: LabSpec, settings: Settings) -> list[tuple[str, str]]:
    """(problem, fix) for each setting the user gave that the lab, as it exists, does not have."""
    found = []
    for field in fields(LabSpec):
        name = field.name
        if name not in settings.explicit or name == "key_created":
            continue
        asked: Any = getattr(settings, name)
        have: Any = getattr(spec, name)
        if name in ("key_name", "key_file") and spec.key_created:
            found.append(
                (
                    f"lab '{spec.name}' uses the key pair up created ({spec.key_name})",
                    "drop --key-name/--key-file to resume it",
                )
            )
            continue
        if name == "key_file":
            asked = _resolved(str(asked))
        if name == "ssh_cidr":
            asked = str(ipaddress.IPv4Network(str(asked), strict=False)) if _cidr(str(asked)) else asked
        if asked != have:
            found.append(
                (
                    f"lab '{spec.name}' was created with {name}={have}; `up` cannot change it to {asked}",
                    "drop that setting to resume the lab, or `invoke down` first, or pick another --name",
                )
            )
    return found


def _cidr(value: str) -> bool:
    try:
        ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        return False
    return True


def _resolved(path: str) -> str:
    return str(Path(path).expanduser().resolve())
