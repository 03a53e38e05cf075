"""A channel per node over Redis sharded pub/sub: how a node hears what other nodes'
transitions have for its users.

Nothing on a node publishes: each transition hands its effects for other nodes' users to their
channels itself, in the same Lua script as its writes (lib.lua's hand-off), so a node that dies
right after a transition leaves nobody untold. The listener reconnects with capped backoff;
after any gap it reports one, because a message published while it was away is gone for good.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

log = structlog.get_logger("pairline.bus")

BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0)
Handler = Callable[[bytes], None]


class NodeBus:
    """Listen on this node's own channel."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        channel: str,
        node_id: str,
        on_message: Handler,
        on_gap: Callable[[], Awaitable[None]],
    ) -> None:
        self.client = client
        self.channel = channel
        self.node_id = node_id
        self._on_message = on_message
        self._on_gap = on_gap
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        # Whether this node hears its channel now: a session served while it does not would
        # miss the events other nodes send it (pub/sub keeps nothing for an absent listener).
        self.listening = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="pairline-bus")
        await asyncio.wait_for(self._subscribed.wait(), 10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        attempt = 0
        first = True
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.ssubscribe(self.channel)
                if not first:
                    log.warning("bus_reconnected", node=self.node_id)
                    await self._on_gap()
                self.listening = True
                self._subscribed.set()
                first = False
                attempt = 0
                async for raw in pubsub.listen():
                    if raw.get("type") == "smessage":
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
            self._on_message(data)
        except Exception:
            log.exception("bus_message_failed", node=self.node_id)
