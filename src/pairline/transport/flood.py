"""Flood protection at the connection: a message budget per connection, connections per address.

Commands and messages are cheap to send and dear to serve; a client that sends faster than any
real page would (an ICE burst included) is closed with 4429 instead of being queued behind.
"""

from __future__ import annotations

import time

from pairline.limits import ConnectionCounter, TokenBucket


class FloodGuard:
    def __init__(self, rate_per_s: float, burst: int, max_connections_per_ip: int) -> None:
        self._rate = rate_per_s
        self._burst = burst
        self._connections = ConnectionCounter(max_connections_per_ip)

    def admit(self, peer: str | None) -> bool:
        """A new connection from `peer`; False when that address already has its share."""
        return peer is None or self._connections.acquire(peer)

    def release(self, peer: str | None) -> None:
        if peer is not None:
            self._connections.release(peer)

    def budget(self) -> MessageBudget:
        return MessageBudget(TokenBucket(self._rate, self._burst))


class MessageBudget:
    """One connection's message allowance."""

    __slots__ = ("_bucket",)

    def __init__(self, bucket: TokenBucket) -> None:
        self._bucket = bucket

    def spend(self) -> bool:
        return self._bucket.take(time.monotonic())
