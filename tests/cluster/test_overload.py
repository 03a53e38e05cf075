"""A node whose store is swamped sheds new joins at once, and keeps its cluster duties."""

from __future__ import annotations

import pytest

from pairline.client import Client, CommandError
from pairline.store.redis.gate import MAX_TURN_S, MIN_TURN_S
from tests.cluster.conftest import NodesFactory
from tests.e2e.test_matching import confirmed_pair
from tests.e2e.test_metrics import scrape


async def test_an_overloaded_node_sheds_joins_with_a_spread_retry_and_changes_nothing(
    start_nodes: NodesFactory,
) -> None:
    # Node 1 counts itself overloaded whatever waits for Redis (no wait is short enough).
    (swamped,) = await start_nodes(1, PAIRLINE_REDIS_MAX_PENDING=0, PAIRLINE_REDIS_MAX_WAIT_MS=0)
    (calm,) = await start_nodes(1)
    async with (
        Client(swamped.url, display_name="ann") as ann,
        Client(calm.url, display_name="bob") as bob,
    ):
        waits = []
        for _ in range(3):
            with pytest.raises(CommandError) as refused:
                await ann.join()
            assert refused.value.code == "rate_limited"
            assert refused.value.retry_after_ms is not None
            waits.append(refused.value.retry_after_ms)
        assert all(MIN_TURN_S * 1000 <= ms <= MAX_TURN_S * 1000 for ms in waits)  # a turn
        assert ann.state["status"] == "idle"
        # Ann is not in the one queue of the cluster: Bob is first, and nobody is there for him.
        assert (await bob.join())["position"] == 1
        m = await scrape(swamped.url)
        assert m[("pairline_rate_limited_total", (("limit", "store"),))] == 3
        assert m[("pairline_errors_total", (("code", "rate_limited"),))] == 3

    # The refusals left nothing behind: from the calm node, Ann joins and meets Bob.
    async with (
        Client(calm.url, token=ann.token) as ann_again,
        Client(calm.url, display_name="dan") as dan,
    ):
        await dan.join()
        await ann_again.join()
        await confirmed_pair(ann_again, dan)
