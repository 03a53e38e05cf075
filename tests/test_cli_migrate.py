"""`pairline migrate`: the records schema up and down from the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def pairline(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pairline", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_migrate_up_and_down(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    assert pairline("migrate", "--database-url", url, cwd=tmp_path) == "schema revision: 0001"
    assert pairline("migrate", "--database-url", url, cwd=tmp_path) == "schema revision: 0001"
    down = pairline("migrate", "--database-url", url, "--down", "base", cwd=tmp_path)
    assert down == "schema revision: none"
