"""Simulated `curl` on the nodes: serves the Istio release tarball, resolves nothing else.

curl 7.81.0 (Ubuntu 22.04) as its man page's EXIT CODES and messages have it: 6 `Could not resolve
host`, 22 `The requested URL returned error: 404` with -f (without -f the body, exit 0), 2 for no
URL; -s hides errors unless -S. The release assets are istio/istio's GitHub release layout
(`istio-<V>-linux-<arch>.tar.gz` and `.sha256` holding `<sha256>  <file name>`, as `sha256sum`
writes it; istio/istio 1.23.2 release/ and tools/ build scripts)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import sys
import tarfile
from urllib.parse import urlsplit

from .config import ISTIOCTL, RELEASE_DIR

RELEASE_URL = re.compile(
    r"^https://github\.com/istio/istio/releases/download/(?P<version>[^/]+)/"
    r"istio-(?P=version)-linux-(?P<arch>amd64|arm64)\.tar\.gz(?P<checksum>\.sha256)?$"
)
VALUE_FLAGS = {
    "-o",
    "--output",
    "--retry",
    "--retry-delay",
    "--retry-max-time",
    "-m",
    "--max-time",
    "--connect-timeout",
    "-H",
    "--header",
    "-A",
    "--user-agent",
    "-w",
    "--write-out",
    "--proto",
}


def tarball(version: str) -> bytes:
    """istio-<V>/bin/istioctl (runs the simulated istioctl) and istio-<V>/samples/addons.

    The same bytes every time (fixed mtimes), as a published release is: its .sha256 must match."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:

        def add(name: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(f"istio-{version}/{name}")
            info.size, info.mode, info.mtime = len(data), mode, 0
            archive.addfile(info, io.BytesIO(data))

        wrapper = (f'#!/bin/sh\nLABSIM_ISTIO_VERSION={version} exec "{ISTIOCTL}" "$@"\n').encode()
        add("bin/istioctl", wrapper, 0o755)
        for path in sorted(RELEASE_DIR.rglob("*")):
            if path.is_file():
                add(str(path.relative_to(RELEASE_DIR)), path.read_bytes())
        add("manifest.yaml", f"name: istio\nversion: {version}\n".encode())
    return gzip.compress(buffer.getvalue(), mtime=0)


def curl(ctx, args: list[str]) -> int:
    flags: dict[str, str] = {}
    switches: set[str] = set()
    urls = []
    items = list(args)
    while items:
        item = items.pop(0)
        if item.startswith("--"):
            name, has_value, value = item.partition("=")
            if name in VALUE_FLAGS:
                flags[name] = value if has_value else items.pop(0)
            else:
                switches.add(name)
        elif item.startswith("-") and len(item) > 1:
            for index, char in enumerate(item[1:], start=1):
                if f"-{char}" in VALUE_FLAGS:
                    flags[f"-{char}"] = item[index + 1 :] or items.pop(0)
                    break
                switches.add(f"-{char}")
        else:
            urls.append(item)
    loud = not ({"-s", "--silent"} & switches) or bool({"-S", "--show-error"} & switches)
    if not urls:
        print("curl: try 'curl --help' or 'curl --manual' for more information", file=sys.stderr)
        return 2
    url = urls[0]
    found = RELEASE_URL.match(url)
    if not found:
        if loud:
            print(f"curl: (6) Could not resolve host: {urlsplit(url).hostname or url}", file=sys.stderr)
        return 6
    if not re.fullmatch(r"\d+\.\d+\.\d+", found["version"]):
        if {"-f", "--fail"} & switches:
            if loud:
                print("curl: (22) The requested URL returned error: 404", file=sys.stderr)
            return 22
        sys.stdout.write("Not Found")
        return 0
    data = tarball(found["version"])
    if found["checksum"]:
        name = urlsplit(url).path.rsplit("/", 1)[-1].removesuffix(".sha256")
        data = f"{hashlib.sha256(data).hexdigest()}  {name}\n".encode()
    target = flags.get("-o") or flags.get("--output")
    if target:
        # via a rename: simulators of parallel test runs share the host's /tmp
        partial = f"{target}.labsim-{os.getpid()}"
        with open(partial, "wb") as file:
            file.write(data)
        os.replace(partial, target)
    else:
        sys.stdout.buffer.write(data)
    return 0
