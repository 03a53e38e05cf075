"""Several pairline nodes sharing one real Redis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.conftest import RunningServer, ServerFactory

NodesFactory = Callable[..., Awaitable[list[RunningServer]]]


@pytest.fixture
def start_nodes(start_server: ServerFactory, redis_url: str, redis_prefix: str) -> NodesFactory:
    """Start `count` nodes on one Redis under this test's key prefix."""

    async def start(count: int, **settings: object) -> list[RunningServer]:
        return [
            await start_server(
                REDIS_URL=redis_url,
                PAIRLINE_REDIS_PREFIX=redis_prefix,
                PAIRLINE_NODE_ID=f"node{i + 1}",
                PAIRLINE_NODE_TIMEOUT_MS=1000,
                PAIRLINE_SECRET="cluster-test-secret",  # every node accepts every token
                # As with the defaults, a dead node is found (1 s) well before its users would
                # count as stale (2 missed pings): several nodes on 2 cores need a 5 s ack.
                **{
                    "PAIRLINE_ACK_TIMEOUT_MS": 5000,
                    "PAIRLINE_PING_INTERVAL_MS": 2000,
                    **settings,
                },
            )
            for i in range(count)
        ]

    return start
