"""What only the Redis backend has: its key layout, its scripts' life in Redis, its failures."""

from __future__ import annotations

import asyncio
import socket

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from pairline.core.rules import Rules
from pairline.errors import StoreUnavailable
from pairline.settings import Settings
from pairline.store.base import open_store
from pairline.store.redis import RedisStore
from pairline.store.redis.keys import SUFFIXES, PartitionKeys
from pairline.store.redis.loader import SCRIPTS, source

T0 = 1_000_000
RULES = Rules()


def test_every_key_of_a_partition_shares_its_hash_slot() -> None:
    keys = PartitionKeys("pairline", "eu")
    assert keys.queue() == "pairline:{eu}:queue"
    slots = {key_slot(keys.base.encode())}
    for name, suffix in SUFFIXES.items():
        key = keys.key(name, "x" if suffix.endswith(":") else "")
        slots.add(key_slot(key.encode()))
    assert slots == {key_slot(b"eu")}
    with pytest.raises(ValueError):
        PartitionKeys("pairline", "{eu}")


def test_every_script_declares_its_keys_and_args() -> None:
    for name in SCRIPTS:
        own = source(name).split(f"-- {name}.lua\n", 1)[1]
        header = own.split("\n\n", 1)[0]
        assert header.startswith(f"-- {name}:"), name
        assert "KEYS[1]" in header and "ARGV[" in header and "Reply:" in header, name


async def test_the_stores_state_lives_under_its_prefix(redis_url: str, redis_prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisStore(client, RULES, prefix=redis_prefix)
    try:
        for user in ("a", "b"):
            await store.attach(user, user, "node-1", f"s-{user}", T0)
            await store.join(user, frozenset({"x"}), None, T0)
        names = [k async for k in client.scan_iter(match=f"{redis_prefix}*")]
        assert names and all(n.startswith(f"{redis_prefix}:{{main}}:") for n in names)
        assert len({key_slot(n.encode()) for n in names}) == 1
        assert await client.smembers(store.keys.node("node-1")) == {"a", "b"}
    finally:
        await store.close()


async def test_scripts_come_back_after_a_script_flush(redis_url: str, redis_prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    store = RedisStore(client, RULES, prefix=redis_prefix)
    try:
        await store.attach("a", "A", "n1", "s-a", T0)
        await client.script_flush()  # what a restart or failover does to the script cache
        reply = (await store.join("a", frozenset(), None, T0)).reply
        assert reply == {"position": 1, "eta_ms": None}
    finally:
        await store.close()


async def test_an_unreachable_redis_is_store_unavailable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = aioredis.Redis(port=port, retry=Retry(NoBackoff(), 0))  # fail at once, no retries
    store = RedisStore(client, RULES)
    try:
        with pytest.raises(StoreUnavailable):
            await store.join("a", frozenset(), None, T0)
        with pytest.raises(StoreUnavailable):
            await store.next_deadline()
    finally:
        await store.close()


async def test_open_store_builds_a_redis_store_on_a_blocking_pool(redis_url: str) -> None:
    settings = Settings(REDIS_URL=redis_url, PAIRLINE_REDIS_PREFIX="pt-open")
    store = open_store(settings, RULES)
    try:
        assert isinstance(store, RedisStore)
        assert store.keys.base == "pt-open:{main}:"
        pool = store.client.connection_pool
        assert isinstance(pool, aioredis.BlockingConnectionPool)
        assert await store.next_deadline() is None
    finally:
        await store.close()


async def test_a_duty_is_claimed_by_one_node_per_period(redis_url: str, redis_prefix: str) -> None:
    nodes = [
        RedisStore(
            aioredis.Redis.from_url(redis_url, decode_responses=True), Rules(), prefix=redis_prefix
        )
        for _ in range(3)
    ]
    claims = [await node.claim_duty("livekit_sweep", 60_000, 1) for node in nodes]
    assert claims == [True, False, False]
    assert await nodes[0].claim_duty("another_job", 60_000, 1)  # duties are claimed apart
    for node in nodes:
        await node.close()


async def test_the_store_is_overloaded_while_transitions_wait_past_its_bound(
    redis_url: str, redis_prefix: str
) -> None:
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=1, timeout=10)
    store = RedisStore(
        aioredis.Redis.from_pool(pool), RULES, prefix=redis_prefix, min_pending=2, max_wait_s=0
    )
    try:
        held = await pool.get_connection()  # the only one: every transition waits for it
        first = asyncio.create_task(store.attach("a", "a", "n1", "s-a", T0))
        await asyncio.sleep(0)  # one turn of the loop: the task runs up to its wait
        assert not store.overloaded()
        second = asyncio.create_task(store.attach("b", "b", "n1", "s-b", T0))
        await asyncio.sleep(0)
        assert store.overloaded()
        await pool.release(held)
        await asyncio.gather(first, second)
        assert not store.overloaded()  # all answered: new work is welcome again
    finally:
        await store.close()
