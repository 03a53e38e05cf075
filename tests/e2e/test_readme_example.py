"""The README's example runs as printed against a real server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.conftest import RunningServer

EXAMPLE = Path(__file__).parents[2] / "examples" / "two_strangers.py"


async def test_two_strangers_example(server: RunningServer) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), server.url, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    lines = out.decode().splitlines()
    assert lines[0] == "Ann matched with Bob"
    assert lines[1].startswith("confirmed m_") and lines[1].endswith("Ann is the offerer")
    assert lines[2] == "Bob got: hi Bob!"
    assert lines[3] == "Bob skipped (requeued: True, position 2)"
    assert lines[4] == "Ann told: partner skipped, back in the queue at 1"
