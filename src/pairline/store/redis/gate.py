"""How a node's requests wait for Redis, and when the node is too busy for new work.

Requests wait on a semaphore here, never inside redis-py's blocking pool: that pool hands each
freed connection to its thousandth waiter only after every earlier waiter has taken and given
back its lock, so a burst of thousands of joins slowed it to a crawl. New work is shed
(`overloaded`) while the queue ahead of it would take longer than `max_wait_s` at the rate
requests have been completing, and each shed join is given a turn to come back at (`turn`):
after the queue ahead drains and after the joins shed before it, spread at the rate the node
serves joins. (A fixed pause brought every shed join back into the same swamp: one node with
10,000 users refused 116,512 joins in 30 s and confirmed 12 matches a second.)

(A second lane that kept a few connections for heard and ack hung after a Redis restart, in
the wiped-Redis fault test, and was taken out: docs/benchmarks.md, "How Redis got here".)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable

from redis.exceptions import RedisError

from pairline.errors import StoreUnavailable

# Requests a second assumed until measured: a burst that meets an idle node is let in this far,
# and further as the measured rate shows what the node and Redis carry.
MIN_RATE_PER_S = 250.0
RATE_WINDOW_S = 0.5
# What a join costs the store in requests: the join, both acks of its match, a heartbeat.
REQUESTS_PER_JOIN = 4
# Turns admit joins this many times faster than the measured rate: that rate is only what was
# asked of the store (a store kept below its capacity by the turns themselves measures low),
# so admissions must be free to grow until the queue says the store is full again.
TURN_HEADROOM = 2.0
# A shed join waits at least this long (a retry sooner would meet the same queue) and at most
# this long: a turn further out was planned with a rate measured early in a burst, so it is
# judged again then, with what the store has shown it carries since.
MIN_TURN_S = 0.25
MAX_TURN_S = 10.0


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
        self._slots = asyncio.Semaphore(connections)
        self._min_pending = min_pending  # never shed below this many waiting
        self._max_wait_s = max_wait_s
        self._slot_timeout_s = slot_timeout_s
        self._clock = clock
        self.pending = 0  # requests sent or waiting for a connection
        self.rate = MIN_RATE_PER_S  # requests completed per second, smoothed
        self._completed = 0
        self._since = clock()
        self._next_turn = 0.0  # when the next shed join's turn comes (clock time)

    def overloaded(self) -> bool:
        return self.pending >= self._min_pending and self.pending >= self.rate * self._max_wait_s

    def turn(self) -> float:
        """Seconds a join shed now should wait before it comes back: its turn in a schedule
        that starts once the queue ahead has drained and admits joins at the rate the node serves
        them, so that the joins shed in a burst return spread out rather than together."""
        now = self._clock()
        start = max(now + self.pending / self.rate, self._next_turn)
        if start - now > MAX_TURN_S:
            # Past the schedule's horizon: shed again when it comes back unless the swamp has
            # cleared by then; spread over the horizon's second half meanwhile.
            return random.uniform(MAX_TURN_S / 2, MAX_TURN_S)
        self._next_turn = start + REQUESTS_PER_JOIN / (self.rate * TURN_HEADROOM)
        return max(MIN_TURN_S, start - now)

    @contextlib.asynccontextmanager
    async def slot(self, what: str) -> AsyncIterator[None]:
        """A connection's worth of Redis for one request; StoreUnavailable when none comes free
        in time or the request fails."""
        slots = self._slots
        self.pending += 1
        try:
            if slots.locked():
                try:
                    async with asyncio.timeout(self._slot_timeout_s):
                        await slots.acquire()
                except TimeoutError:
                    raise StoreUnavailable(f"redis: {what}: no connection free") from None
            else:
                await slots.acquire()
            try:
                yield
            except RedisError as exc:
                raise StoreUnavailable(f"redis: {what} failed: {exc}") from exc
            finally:
                slots.release()
                self._count_completed()
        finally:
            self.pending -= 1

    def _count_completed(self) -> None:
        self._completed += 1
        now = self._clock()
        elapsed = now - self._since
        if elapsed >= RATE_WINDOW_S:
            measured = self._completed / elapsed
            self.rate = max(MIN_RATE_PER_S, (self.rate + measured) / 2)
            self._completed, self._since = 0, now
