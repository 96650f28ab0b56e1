"""Small pieces of `invoke kubectl` and `invoke kiali`: which arguments name local files, the
upload archive, the local port checks."""

from __future__ import annotations

import base64
import io
import os
import socket
import tarfile
from pathlib import Path

import pytest

from lab.access import Upload, _file_flags
from lab.errors import UsageError
from lab.tunnel import holder, listen, parse_port


def test_every_form_kubectl_takes_for_a_file_is_found() -> None:
    args = ["apply", "-f", "a.yaml", "-fb.yaml", "-f=c.yaml", "--filename", "d", "--filename=e", "-k", "kust"]
    assert [value for _, value in _file_flags(args)] == ["a.yaml", "b.yaml", "c.yaml", "d", "e", "kust"]
    assert _file_flags(["logs", "-f", "pod1"]) == [], "`logs -f` follows; it names no file"
    assert _file_flags(["exec", "pod1", "--", "tail", "-f", "x"]) == [], "after --, the pod's own arguments"


def test_local_files_and_folders_are_packed_and_their_arguments_point_at_the_copies(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("kind: A\n")
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "two.yaml").write_text("kind: B\n")
    args = [
        "apply",
        "-f",
        str(tmp_path / "one.yaml"),
        f"--filename={folder}",
        "-f",
        "-",
        "-f",
        "https://x/y.yaml",
    ]
    args += ["-f", str(tmp_path / "absent.yaml")]
    upload = Upload.of(args)
    remote = upload.remote_dir
    assert remote.startswith("/tmp/lab-kubectl-")
    assert upload.args == [
        "apply",
        "-f",
        f"{remote}/0/one.yaml",
        f"--filename={remote}/1/dir",
        "-f",
        "-",
        "-f",
        "https://x/y.yaml",
        "-f",
        str(tmp_path / "absent.yaml"),  # kubectl says it does not exist, in its own words
    ]
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(upload.archive())), mode="r:gz") as archive:
        members = [m for m in archive.getmembers() if m.isfile()]
        contents = {m.name: archive.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    assert contents == {"0/one.yaml": b"kind: A\n", "1/dir/two.yaml": b"kind: B\n"}
    assert "umask 077" in upload.command()


@pytest.mark.parametrize("value", ["abc", "-1", "65536", "2.5", ""])
def test_a_bad_port_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError, match="is not a port number"):
        parse_port(value)


def test_a_busy_port_names_the_process_that_holds_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert holder(port).startswith(f"process {os.getpid()} (")
        with pytest.raises(UsageError, match=f"local port {port} is already in use by process {os.getpid()}"):
            listen(port)
    free = listen(0)
    try:
        assert free.getsockname()[1] != 0
    finally:
        free.close()
