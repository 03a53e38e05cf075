"""A node can die the moment a transition of its own is done, before it has told anyone. What
the transition had for users on other nodes reaches them anyway: the transition hands it to
their nodes itself (lib.lua's hand-off), atomically with its writes."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from pairline.client import Client, CommandError
from pairline.core.rules import Rules
from pairline.engine.clock import now_ms
from pairline.store.redis import RedisStore
from tests.cluster.conftest import NodesFactory

# A node that runs transitions and carries out none of their effects: one that dies right
# after each. Its user is held in Redis as connected there.
DOOMED = "doomed"


async def test_a_node_dying_right_after_its_transitions_leaves_no_partner_untold(
    start_nodes: NodesFactory, redis_url: str, redis_prefix: str
) -> None:
    (node,) = await start_nodes(1)
    doomed = RedisStore(
        aioredis.Redis.from_url(redis_url), Rules(), prefix=redis_prefix, node_id=DOOMED
    )
    try:
        await doomed.attach("ann", "ann", DOOMED, "s-ann", now_ms())
        await doomed.join("ann", frozenset(), None, now_ms())
        async with Client(node.url, ack_matched=False) as bob:
            await bob.join()
            match_id = (await bob.wait_for("matched")).raw["match_id"]
            await bob.ack()
            with pytest.raises(CommandError):  # answered after the ack, so the ack is in
                await bob.skip("m_404")

            await doomed.ack("ann", match_id, now_ms())  # the second ack: confirmed
            assert (await bob.wait_for("match_confirmed")).raw["match_id"] == match_id
            chat = {"type": "chat", "text": "still there?"}
            await doomed.relay("ann", match_id, chat, now_ms())
            assert (await bob.wait_for("chat")).raw["text"] == "still there?"
            await doomed.skip("ann", match_id, now_ms())
            left = await bob.wait_for("partner_left")
            assert (left.raw["match_id"], left.raw["reason"]) == (match_id, "skipped")
            assert left.raw["requeued"] is True
    finally:
        await doomed.close()
