"""Stores of every backend, from one parametrised fixture resolved by name (as litestar does)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from pairline.core.rules import Rules
from pairline.store.base import Store
from pairline.store.memory import MemoryStore
from pairline.store.redis import RedisStore

StoreFactory = Callable[[Rules], Store]


@pytest.fixture
def memory_stores() -> StoreFactory:
    return lambda rules: MemoryStore(rules, id_suffix=lambda: "")


@pytest.fixture
async def redis_stores(redis_url: str, redis_prefix: str) -> AsyncIterator[StoreFactory]:
    """Redis stores of this test's own prefix (several share one state, like nodes)."""
    made: list[RedisStore] = []

    def make(rules: Rules) -> Store:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        made.append(RedisStore(client, rules, prefix=redis_prefix, id_suffix=lambda: ""))
        return made[-1]

    yield make
    for store in made:
        await store.close()


@pytest.fixture(params=["memory", "redis"])
def stores(request: pytest.FixtureRequest) -> StoreFactory:
    factory: StoreFactory = request.getfixturevalue(f"{request.param}_stores")
    return factory
