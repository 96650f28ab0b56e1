"""A broken scenario file blocks only itself: the real CLI, in a copy of the checkout that has one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.lifecycle.conftest import base_env

from .helpers import SIX

REPO = Path(__file__).resolve().parents[2]


def test_a_broken_file_is_listed_as_broken_and_blocks_only_itself(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for part in ("lab", "scenarios", "manifests", "cloudformation"):
        shutil.copytree(REPO / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "tasks.py", checkout)
    (checkout / "scenarios" / "typo.yaml").write_text(
        (REPO / "scenarios" / "egress-gateway-http.yaml")
        .read_text()
        .replace("name: egress-gateway-http", "name: typo")
        .replace("stdoutContains", "stdoutContain", 1)
        .replace("httpStatus: 301", "httpStatu: 301", 1)
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # cwd first on sys.path: the copy's `lab` is the one imported, and it reads the copy's files
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=checkout,
            env=base_env(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=120,
        )

    listing = run("scenarios")
    assert listing.returncode == 0, listing.stderr
    rows = listing.stdout.splitlines()
    assert [r.split()[0] for r in rows[: len(SIX)]] == SIX
    assert rows[len(SIX)].split()[:2] == ["typo", "broken:"]
    assert "scenarios/typo.yaml: steps[1].expect: Additional properties are not allowed" in rows[len(SIX)]
    assert "docs/scenarios.md" in rows[-1]

    itself = run("scenario", "typo")
    assert itself.returncode == 1 and "Traceback" not in itself.stderr
    [line] = itself.stderr.strip().splitlines()
    assert line.startswith(f"error: {checkout / 'scenarios' / 'typo.yaml'}: steps[1].expect")
    assert line.endswith("→ the scenario format is described in docs/scenarios.md")

    other = run("scenario", "egress-gateway-http")  # gets past loading: only the lab is missing
    assert other.returncode == 1
    assert other.stderr.strip().startswith("error: no lab named 'egress'"), other.stderr
    assert run("analyze", "--scenario", "egress-sni").returncode == 0
