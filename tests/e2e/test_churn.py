"""Many random users on one node: every invariant of protocol.md §4 holds in their logs."""

from __future__ import annotations

import pytest

from tests.cluster.churn import run_churn
from tests.conftest import ServerFactory


@pytest.mark.heavy
@pytest.mark.timeout(180)
async def test_one_node_under_churn_keeps_every_invariant(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_SKIP_LIMIT=0, PAIRLINE_RESUME_WINDOW_MS=3000)
    report = await run_churn([server.url], users=150, seconds=8, seed=7)
    assert report.violations == []
    assert report.confirmed > 150, report
    assert min(report.actions.values()) > 0, report.actions
