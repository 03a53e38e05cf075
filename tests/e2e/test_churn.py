"""Many random users on one node: every invariant of protocol.md §4 holds in their logs."""

from __future__ import annotations

import pytest

from tests.cluster.churn import run_churn
from tests.conftest import ServerFactory


@pytest.mark.heavy
@pytest.mark.timeout(180)
async def test_one_node_under_churn_keeps_every_invariant(start_server: ServerFactory) -> None:
    # Rematches allowed at once, so that only the blocks keep pairs apart: half the users end
    # their calls with `block`, and no blocked pair may ever meet again.
    server = await start_server(
        PAIRLINE_SKIP_LIMIT=0, PAIRLINE_RESUME_WINDOW_MS=3000, PAIRLINE_REMATCH_AFTER_S=0
    )
    report = await run_churn([server.url], users=200, seconds=8, seed=7, blockers=0.5)
    assert report.violations == []
    assert report.confirmed > 200, report
    assert min(report.actions.values()) > 0, report.actions
