"""How a node's requests wait for Redis, and when the node is too busy for new work.

Requests wait on semaphores here, never inside redis-py's blocking pool: that pool hands each
freed connection to its thousandth waiter only after every earlier waiter has taken and given
back its lock, so a burst of thousands of joins slowed it to a crawl. Two lanes share the
pool: a few connections are kept for work in progress that a deadline hangs on (a pong that
answers a 2 s health check, an ack within the 5 s ack timeout), so that it never queues behind
a burst of new joins. New work is shed (`overloaded`) while the queue ahead of it would take
longer than `max_wait_s` at the rate requests have been completing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from redis.exceptions import RedisError

from pairline.errors import StoreUnavailable

PRIORITY_CONNECTIONS = 8  # at most; a quarter of a small pool
# Requests a second assumed until measured: a burst that meets an idle node is let in this far,
# and further as the measured rate shows what the node and Redis carry.
MIN_RATE_PER_S = 250.0
RATE_WINDOW_S = 0.5


class RequestGate:
    def __init__(
        self,
        connections: int,
        *,
        min_pending: int,
        max_wait_s: float,
        slot_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        priority = max(1, min(PRIORITY_CONNECTIONS, connections // 4))
        self._bulk = asyncio.Semaphore(max(1, connections - priority))
        self._priority = asyncio.Semaphore(priority)
        self._min_pending = min_pending  # never shed below this many waiting
        self._max_wait_s = max_wait_s
        self._slot_timeout_s = slot_timeout_s
        self._clock = clock
        self.pending = 0  # bulk requests sent or waiting for a connection
        self.rate = MIN_RATE_PER_S  # requests completed per second, smoothed
        self._completed = 0
        self._since = clock()

    def overloaded(self) -> bool:
        return self.pending >= self._min_pending and self.pending >= self.rate * self._max_wait_s

    @contextlib.asynccontextmanager
    async def slot(self, what: str, *, priority: bool = False) -> AsyncIterator[None]:
        """A connection's worth of Redis for one request; StoreUnavailable when none comes free
        in time or the request fails."""
        lane = self._priority if priority else self._bulk
        if not priority:
            self.pending += 1
        try:
            if lane.locked():
                try:
                    async with asyncio.timeout(self._slot_timeout_s):
                        await lane.acquire()
                except TimeoutError:
                    raise StoreUnavailable(f"redis: {what}: no connection free") from None
            else:
                await lane.acquire()
            try:
                yield
            except RedisError as exc:
                raise StoreUnavailable(f"redis: {what} failed: {exc}") from exc
            finally:
                lane.release()
                self._count_completed()
        finally:
            if not priority:
                self.pending -= 1

    def _count_completed(self) -> None:
        self._completed += 1
        now = self._clock()
        elapsed = now - self._since
        if elapsed >= RATE_WINDOW_S:
            measured = self._completed / elapsed
            self.rate = max(MIN_RATE_PER_S, (self.rate + measured) / 2)
            self._completed, self._since = 0, now
