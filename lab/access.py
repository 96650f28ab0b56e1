"""Getting at a running lab: a shell, kubectl, the Kiali tunnel, and evidence on demand."""

from __future__ import annotations

import base64
import io
import os
import secrets
import shlex
import shutil
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from lab import evidence, tunnel
from lab.cluster import Cluster
from lab.config import Settings
from lab.errors import LabError, UsageError
from lab.lab import Lab
from lab.progress import Progress
from lab.steps.ssh import ssh_config_path, write_ssh_config

KIALI_PORT = 20001


def ssh(settings: Settings, node: str, command: list[str] | None = None) -> None:
    """Replace this process with ssh to the node, using the lab's pinned config: an interactive
    shell, or COMMAND run there (ssh's own exit code, which is the command's)."""
    lab = Lab.load(settings)
    lab.node(node)  # a clear error for an unknown node name
    config = ssh_config_path(lab)
    write_ssh_config(lab)  # cheap, and never stale after the stack was re-created
    binary = shutil.which("ssh")
    if binary is None:
        raise LabError("the `ssh` command is not installed", "install an OpenSSH client")
    sys.stdout.flush()
    # As with `ssh HOST CMD...`, the words are joined and the node's shell reads them: pipes work.
    os.execv(binary, ["ssh", "-F", str(config), "--", node, *(command or [])])


def kubectl(settings: Settings, args: list[str]) -> int:
    """kubectl on k3s-s with the caller's stdin and local files: kubectl's output and exit code."""
    stdin = _stdin_for(args)
    cluster = Cluster.for_lab(settings)
    upload = Upload.of(args)
    if upload.files:
        cluster.node.run(upload.command(), stdin=upload.archive())
    try:
        result = cluster.kubectl(*upload.args, stdin=stdin, check=False)
    finally:
        if upload.files:
            cluster.node.run(f"rm -rf {upload.remote_dir}", check=False)
    print(result.stdout, end="")
    if result.stderr:
        print(result.stderr, end="", file=sys.stderr)
    return result.exit_code


def _stdin_for(args: list[str]) -> str | None:
    """The caller's stdin when kubectl reads it (`-f -`, `exec -i`); never a wait on a terminal."""
    wants = any(value == "-" for _, value in _file_flags(args)) or any(
        a in ("-i", "--stdin", "-it", "-ti") or a.startswith("--stdin=") for a in args
    )
    if not wants:
        return None
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError(
            "kubectl would read stdin, and stdin is a terminal",
            "pipe the input in: invoke kubectl -- apply -f - < egress.yaml",
        )
    return sys.stdin.read()


# kubectl's flags that name local files or folders (kubectl apply/create/delete/diff/replace --help).
_FILE_FLAGS = ("-f", "--filename", "-k", "--kustomize")


def _file_flags(args: list[str]) -> list[tuple[int, str]]:
    """(index of the value, value) of every -f/--filename/-k/--kustomize, in the forms pflag takes:
    `-f X`, `-f=X`, `-fX`, `--filename X`, `--filename=X`."""
    found: list[tuple[int, str]] = []
    words = [a for a in args if not a.startswith("-")]
    if words[:1] == ["logs"]:  # `kubectl logs -f` follows; it names no file
        return found
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg in _FILE_FLAGS and index + 1 < len(args):
            found.append((index + 1, args[index + 1]))
        elif arg.startswith(tuple(f"{f}=" for f in _FILE_FLAGS)):
            found.append((index, arg.split("=", 1)[1]))
        elif arg[:2] in ("-f", "-k") and len(arg) > 2 and not arg.startswith("--"):
            found.append((index, arg[2:]))
    return found


@dataclass
class Upload:
    """Local files and folders named by -f/-k, packed for k3s-s, and the arguments that name
    their copies there. URLs, `-` and paths that do not exist here are left to kubectl."""

    args: list[str]
    files: list[tuple[Path, str]]  # local path, name inside the archive
    remote_dir: str

    @classmethod
    def of(cls, args: list[str]) -> Upload:
        remote_dir = f"/tmp/lab-kubectl-{secrets.token_hex(6)}"
        rewritten, files = list(args), []
        for index, value in _file_flags(args):
            local = Path(value).expanduser()
            if value == "-" or "://" in value or not local.exists():
                continue
            inside = f"{len(files)}/{local.resolve().name or 'root'}"
            files.append((local, inside))
            arg = args[index]
            prefix = arg[: len(arg) - len(value)] if arg.endswith(value) and arg != value else ""
            rewritten[index] = f"{prefix}{remote_dir}/{inside}"
        return cls(rewritten, files, remote_dir)

    def archive(self) -> str:
        """A gzipped tar of the files, base64 text (Node.run's stdin is text)."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", dereference=True) as tar:
            for local, inside in self.files:
                tar.add(str(local), arcname=inside, filter=_private)
        return base64.b64encode(buffer.getvalue()).decode() + "\n"

    def command(self) -> str:
        # umask 077: the copies are readable by the lab's user only. Idempotent, as Node.run needs.
        folder = shlex.quote(self.remote_dir)
        return f"umask 077 && rm -rf {folder} && mkdir -p {folder} && base64 -d | tar -xzf - -C {folder}"


def _private(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def kiali(settings: Settings, local_port: int = KIALI_PORT, progress: Progress | None = None) -> None:
    """Tunnel localhost:<port> (0: a free one) to Kiali's Service over SSH until Ctrl-C."""
    out = progress or Progress()
    server = tunnel.listen(local_port)  # first: a busy port needs no lab to be reported
    try:
        cluster = Cluster.for_lab(settings)
        service = cluster.kubectl_json("get", "service", "kiali", "-n", "istio-system")
        address = service.get("spec", {}).get("clusterIP")
        if not address:
            raise LabError("Kiali has no ClusterIP", "run `invoke up` to finish installing the add-ons")
        node = cluster.node
        node.connect()
        assert node._connection is not None
        transport = node._connection.client.get_transport()
        assert transport is not None
        forward = tunnel.Tunnel(server, transport, address, KIALI_PORT, lambda m: out.warn(f"tunnel: {m}"))
        forward.start()
        out.info(f"Kiali: http://localhost:{forward.port}/kiali  (Ctrl-C to close the tunnel)")
        try:
            forward.wait()
        except KeyboardInterrupt:
            out.info("Tunnel closed.")
        finally:
            forward.stop()
            node.close()
    finally:
        server.close()


def logs(settings: Settings, progress: Progress | None = None) -> None:
    out = progress or Progress()
    lab = Lab.load(settings)
    nodes = lab.nodes()
    with out.step("Collecting evidence from every node") as step:
        bundle = evidence.collect(nodes, lab.dir, "collected on demand by `invoke logs`")
        step.detail(f"in {bundle}")
    for node in nodes:
        node.close()
