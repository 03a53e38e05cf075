"""Many clients, one partition: concurrent transitions through one Redis store, and through
several (simulated nodes sharing the prefix), never pair anyone twice nor complete a deadline
twice."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from pairline.core import effects as fx
from pairline.core.rules import Rules
from pairline.store.base import Effects
from pairline.store.redis import RedisStore

N = 1000
T0 = 1_700_000_000_000
RULES = Rules()
MakeStores = Callable[[int], Awaitable[list[RedisStore]]]


@pytest.fixture
async def make_stores(redis_url: str, redis_prefix: str) -> AsyncIterator[MakeStores]:
    """`count` stores sharing this test's prefix, each with its own small blocking pool, so
    that a thousand tasks queue for connections instead of failing."""
    made: list[RedisStore] = []

    async def make(count: int) -> list[RedisStore]:
        for _ in range(count):
            pool = aioredis.BlockingConnectionPool.from_url(
                redis_url, max_connections=16, timeout=30
            )
            made.append(RedisStore(aioredis.Redis.from_pool(pool), RULES, prefix=redis_prefix))
        return made[-count:]

    yield make
    for store in made:
        await store.close()


@pytest.mark.parametrize("nodes", [1, 4])
async def test_a_thousand_concurrent_joins_make_five_hundred_pairs(
    make_stores: MakeStores, nodes: int
) -> None:
    stores = await make_stores(nodes)
    users = [f"u{i}" for i in range(N)]

    def store_of(i: int) -> RedisStore:
        return stores[i % nodes]

    await asyncio.gather(
        *(store_of(i).attach(u, u, f"n{i % nodes}", f"s-{u}", T0) for i, u in enumerate(users))
    )
    joins = await asyncio.gather(
        *(store_of(i).join(u, frozenset(), None, T0) for i, u in enumerate(users))
    )
    told: dict[str, str] = {}  # user → the match it was proposed
    for outcome in joins:
        for e in outcome.effects:
            if isinstance(e, fx.Send) and e.message["type"] == "matched":
                assert e.user_id not in told, f"{e.user_id} proposed twice"
                told[e.user_id] = e.message["match_id"]
    assert sorted(told) == sorted(users)

    acks = await asyncio.gather(*(store_of(i).ack(u, told[u], T0 + 1) for i, u in enumerate(users)))
    confirmed = [e for effects in acks for e in effects if isinstance(e, fx.Confirmed)]
    assert len(confirmed) == N // 2
    assert len({c.match.match_id for c in confirmed}) == N // 2
    in_pairs = Counter(u for c in confirmed for u in c.match.users)
    assert sorted(in_pairs) == sorted(users) and set(in_pairs.values()) == {1}
    assert all(re.fullmatch(r"m_\d+_[0-9a-f]{8}", c.match.match_id) for c in confirmed)

    assert await stores[0].queue_status(users, T0 + 1) == {}
    assert await stores[0].client.zcard(stores[0].keys.queue()) == 0
    partner_of = {a: b for c in confirmed for a, b in (c.match.users, c.match.users[::-1])}
    views = await asyncio.gather(*(stores[0].snapshot(u, T0 + 1) for u in users))
    for user, view in zip(users, views, strict=True):
        assert view.state["status"] == "in_call"
        assert view.state["match"]["partner"]["user_id"] == partner_of[user]


async def test_nodes_expiring_at_once_complete_each_deadline_once(
    make_stores: MakeStores,
) -> None:
    stores = await make_stores(4)
    pairs = 150  # 300 deadlines' worth of work: more than one expire batch per node
    users = [f"u{i}" for i in range(2 * pairs)]
    for u in users:
        await stores[0].attach(u, u, "n0", f"s-{u}", T0)
    for u in users:
        await stores[0].join(u, frozenset(), None, T0)  # proposed in pairs, never acked
    due = T0 + RULES.ack_timeout_ms
    assert await stores[0].next_deadline() == due

    async def node_expires(store: RedisStore) -> Effects:
        done: Effects = []
        while (at := await store.next_deadline()) is not None and at <= due:
            done += await store.expire(due)
        return done

    results = await asyncio.gather(*(node_expires(s) for s in stores))
    failed = Counter(
        e.match.match_id for effects in results for e in effects if isinstance(e, fx.MatchFailed)
    )
    assert len(failed) == pairs and set(failed.values()) == {1}
    cancelled = Counter(
        e.user_id
        for effects in results
        for e in effects
        if isinstance(e, fx.Send) and e.message["type"] == "match_cancelled"
    )
    assert sorted(cancelled) == sorted(users) and set(cancelled.values()) == {1}
    assert await stores[0].next_deadline() is None
