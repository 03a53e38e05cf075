"""A channel per node over Redis pub/sub: how one node hands another a user's message.

Messages are tagged with their origin node. The listener reconnects with capped backoff; after
any gap it reports one, because a message published while it was away is gone for good.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

log = structlog.get_logger("pairline.bus")

BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0)
PUBLISH_BATCH = 500
# A failed batch is sent again after each of these pauses (3.85 s in all: inside the 5 s a
# receiver waits for a missing event before it makes its client resync).
PUBLISH_RETRY_S = (0.1, 0.25, 0.5, 1.0, 2.0)
Handler = Callable[[str, list[Any]], None]


class NodeBus:
    """Publish to any node's channel; listen on this node's own."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        node_id: str,
        on_message: Handler,
        on_gap: Callable[[], Awaitable[None]],
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.node_id = node_id
        self._on_message = on_message
        self._on_gap = on_gap
        self._encode = msgspec.json.Encoder().encode
        self._decode = msgspec.json.Decoder().decode
        self._task: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._outgoing: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._subscribed = asyncio.Event()
        # Whether this node hears its channel now: a session served while it does not would
        # miss the events other nodes send it (pub/sub keeps nothing for an absent listener).
        self.listening = False

    def channel(self, node_id: str) -> str:
        return f"{self.prefix}:node:{node_id}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="pairline-bus")
        self._publisher = asyncio.create_task(self._publish(), name="pairline-bus-publisher")
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def stop(self) -> None:
        for task in (self._task, self._publisher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def publish(self, node_id: str, item: list[Any]) -> None:
        """Queue a message for another node. One publisher sends them in order, in pipelined
        batches; one lost in a failure is covered by the receiver's resync (see registry)."""
        self._outgoing.put_nowait((self.channel(node_id), self._encode([self.node_id, item])))

    async def _publish(self) -> None:
        outgoing = self._outgoing
        while True:
            batch = [await outgoing.get()]
            while not outgoing.empty() and len(batch) < PUBLISH_BATCH:
                batch.append(outgoing.get_nowait())
            for delay in (*PUBLISH_RETRY_S, None):
                try:
                    async with self.client.pipeline(transaction=False) as pipe:
                        for channel, payload in batch:
                            pipe.publish(channel, payload)
                        await pipe.execute()
                    break
                except (RedisError, OSError) as exc:
                    # Sent again whole: a receiver drops what it already has (by event order),
                    # and an event that never comes costs its user a resync.
                    log.warning(
                        "bus_publish_failed",
                        messages=len(batch),
                        error=str(exc),
                        retry_in_s=delay,
                    )
                    if delay is None:
                        break
                    await asyncio.sleep(delay)  # a backoff, not a stand-in for an event

    async def _listen(self) -> None:
        attempt = 0
        first = True
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel(self.node_id))
                if not first:
                    log.warning("bus_reconnected", node=self.node_id)
                    await self._on_gap()
                self.listening = True
                self._subscribed.set()
                first = False
                attempt = 0
                async for raw in pubsub.listen():
                    if raw.get("type") == "message":
                        self._dispatch(raw["data"])
            except (RedisError, OSError) as exc:
                self.listening = False
                delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                attempt += 1
                log.warning("bus_lost", node=self.node_id, error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, data: bytes) -> None:
        try:
            origin, item = self._decode(data)
            self._on_message(origin, item)
        except Exception:
            log.exception("bus_message_failed", node=self.node_id)
