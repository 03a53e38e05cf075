"""Which nodes are alive, and whether Redis still holds the state the nodes wrote.

Each node refreshes its score in a sorted set of nodes every beat. A node whose score is older
than the node timeout is dead: the first live node to remove it from the set (ZREM answers 1
to exactly one caller) tells the store, which starts the resume window of every user that was
connected there. A node that finds itself gone from the set was taken for dead while it stalled:
it makes every client reconnect. An epoch key written at start-up reveals a Redis that lost its
data (a restart without persistence): the nodes then make every client reconnect, which rebuilds
its session.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from pairline.engine.clock import now_ms

log = structlog.get_logger("pairline.membership")


class NodeMembership:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        nodes_key: str,
        epoch_key: str,
        node_id: str,
        node_timeout_ms: int,
        on_node_lost: Callable[[str], Awaitable[None]],
        on_data_lost: Callable[[], Awaitable[None]],
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.client = client
        self.nodes_key = nodes_key
        self.epoch_key = epoch_key
        self.node_id = node_id
        self.node_timeout_ms = node_timeout_ms
        self.beat_s = node_timeout_ms / 5000  # five beats missed before a node counts as dead
        self._on_node_lost = on_node_lost
        self._on_data_lost = on_data_lost
        self._clock = clock
        self._epoch: bytes | None = None
        self._last_beat = 0
        self._task: asyncio.Task[None] | None = None
        # One beat at a time: the bus beats out of turn when its listener is back (see node.py),
        # and two beats seeing one lost epoch would make every client reconnect twice.
        self._beating = asyncio.Lock()

    async def start(self) -> None:
        self._epoch = await self._current_epoch()
        self._last_beat = self._clock()
        await self.client.zadd(self.nodes_key, {self.node_id: self._last_beat})
        self._task = asyncio.create_task(self._run(), name="pairline-membership")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            await self.client.zrem(self.nodes_key, self.node_id)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.beat_s)
            try:
                await self.beat()
            except (RedisError, OSError) as exc:
                log.warning("membership_beat_failed", node=self.node_id, error=str(exc))

    async def beat(self) -> bool:
        """Refresh this node, check the epoch, and take over from dead nodes. True if this
        node's clients were made to reconnect."""
        async with self._beating:
            return await self._beat()

    async def _beat(self) -> bool:
        now = max(self._clock(), self._last_beat + 1)  # a new score: CH counts it
        self._last_beat = now
        lost = False
        if not await self.client.zadd(self.nodes_key, {self.node_id: now}, xx=True, ch=True):
            # Gone from the set: another node found this one silent past the node timeout
            # (a stall, a partition) and took its users over, so their resume windows ran out
            # while their connections here stayed open. Those connections stand for nothing
            # now: every client reconnects and gets the store's state.
            log.error("node_declared_dead", node=self.node_id)
            await self.client.zadd(self.nodes_key, {self.node_id: now})
            lost = True
        epoch = await self._current_epoch()
        if epoch != self._epoch:
            log.error("redis_data_lost", node=self.node_id)
            self._epoch = epoch
            lost = True
        if lost:  # once, though a wiped Redis shows both signs: one reconnect per client
            await self._on_data_lost()
        dead = await self.client.zrangebyscore(self.nodes_key, "-inf", now - self.node_timeout_ms)
        for raw in dead:
            node = raw.decode() if isinstance(raw, bytes) else str(raw)
            if node != self.node_id and await self.client.zrem(self.nodes_key, node) == 1:
                log.warning("node_lost", node=node, taken_over_by=self.node_id)
                await self._on_node_lost(node)
        return lost

    async def _current_epoch(self) -> bytes:
        """The epoch in Redis, creating it if missing (a fresh or wiped Redis)."""
        await self.client.set(self.epoch_key, secrets.token_hex(8), nx=True)
        value = await self.client.get(self.epoch_key)
        assert isinstance(value, bytes)
        return value
