"""`python -m tests.labsim serve`: says what it lacks before saying ready, and where its files live."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def serve(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.labsim", "serve", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def until_ready(server: subprocess.Popen[str]) -> str:
    assert server.stdout is not None
    lines = []
    while (line := server.stdout.readline()) and line != "labsim ready\n":
        lines.append(line)
    assert line == "labsim ready\n", "".join(lines) + server.stderr.read()  # type: ignore[union-attr]
    return "".join(lines)


def test_without_sshd_it_exits_1_with_one_line_saying_what_to_install() -> None:
    server = serve(LABSIM_SSHD="/nonexistent/sbin/sshd")
    out, err = server.communicate(timeout=60)
    assert server.returncode == 1
    assert "labsim ready" not in out
    assert err.strip().splitlines() == [
        "labsim: error: the lab simulator needs /nonexistent/sbin/sshd: install openssh-server "
        "(apt-get install openssh-server)"
    ]


def files_line(printed: str) -> tuple[Path, str]:
    match = re.search(r"^# files in (\S+) \(([^)]*)\)", printed, re.MULTILINE)
    assert match, printed
    return Path(match[1]), match[2]


def test_it_says_where_its_files_live_and_keeps_them_with_workdir(tmp_path: Path) -> None:
    temporary = serve()
    try:
        folder, note = files_line(until_ready(temporary))
        assert folder.is_dir() and "pass --workdir DIR to keep them" in note
    finally:
        temporary.send_signal(signal.SIGTERM)
        assert temporary.wait(timeout=30) == 0
    assert not folder.exists()

    workdir = tmp_path / "kept"
    kept = serve("--workdir", str(workdir))
    try:
        printed = until_ready(kept)
        folder, note = files_line(printed)
        assert (folder, note) == (workdir, "kept after exit")
        assert f"LAB_HOME={workdir / 'labhome'}" in printed
    finally:
        kept.send_signal(signal.SIGTERM)
        assert kept.wait(timeout=30) == 0
    assert (workdir / "commands.jsonl").exists() and (workdir / "labhome").is_dir()
