"""Redis goes away and comes back empty: nodes keep their clients, fail only what failed, and
rebuild what they can."""

from __future__ import annotations

import pytest

from pairline.client import Client, CommandError
from tests.conftest import ServerFactory
from tests.e2e.test_matching import confirmed_pair
from tests.redis_server import own_redis


async def test_an_outage_fails_commands_cleanly_and_a_wiped_redis_is_rebuilt(
    start_server: ServerFactory,
) -> None:
    with own_redis() as redis:
        nodes = [
            await start_server(
                REDIS_URL=redis.url,
                PAIRLINE_NODE_ID=f"node{i}",
                PAIRLINE_NODE_TIMEOUT_MS=1000,
                PAIRLINE_SECRET="fault-test-secret",
                PAIRLINE_ACK_TIMEOUT_MS=5000,
            )
            for i in (1, 2)
        ]
        async with (
            Client(nodes[0].url, backoff=(0.2, 0.5, 1.0, 2.0, 2.0)) as ann,
            Client(nodes[1].url, backoff=(0.2, 0.5, 1.0, 2.0, 2.0)) as bob,
        ):
            first_session = ann.session
            redis.kill()
            with pytest.raises(CommandError) as failed:
                await ann.join(timeout=15)
            assert failed.value.code == "internal"
            assert ann.connected and ann.session == first_session  # the socket stayed open

            redis.start()  # back, and empty: the nodes notice the lost epoch and resync
            for client in (ann, bob):
                welcome = await client.wait_welcome(2, timeout=20)  # reconnected by the node
                assert welcome["state"]["status"] == "idle"  # what Redis knows now
            await ann.join()
            await bob.join()
            await confirmed_pair(ann, bob)
            # Each node lost its listener and found Redis's data lost: two reasons, one
            # reconnect (a second could catch a command on a session that no longer knows it).
            assert [len(client.welcomes) for client in (ann, bob)] == [2, 2]
