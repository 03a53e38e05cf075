"""Rate-limiting primitives: token buckets (single and per key) and per-key connection counts.

Nothing here reads a clock: callers pass a monotonic `now`, so behaviour is plain arithmetic.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable

# Absorbs float rounding so a caller that waits exactly `retry_after` is not refused.
_EPSILON = 1e-9
# Full buckets dropped per `take`: keeps each call O(1) while still outpacing insertions.
_PRUNE_PER_TAKE = 8


class TokenBucket:
    """Holds up to `burst` tokens, refilled at `rate_per_s`; starts full."""

    __slots__ = ("_stamp", "_tokens", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: float) -> None:
        if rate_per_s <= 0 or burst <= 0:
            raise ValueError("rate_per_s and burst must be positive")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = burst
        self._stamp: float | None = None

    def available(self, now: float) -> float:
        """Tokens in the bucket at `now`."""
        if self._stamp is None or now <= self._stamp:
            # A clock that goes back never refills (nor drains) the bucket.
            return self._tokens
        return min(self.burst, self._tokens + (now - self._stamp) * self.rate_per_s)

    def take(self, now: float, n: float = 1) -> bool:
        """Take `n` tokens if the bucket holds them; a refusal takes nothing."""
        tokens = self.available(now)
        if self._stamp is None or now > self._stamp:
            self._stamp = now
        self._tokens = tokens
        if tokens + _EPSILON < n:
            return False
        self._tokens = max(0.0, tokens - n)
        return True

    def retry_after(self, now: float, n: float = 1) -> float:
        """Seconds from `now` until `n` tokens are there (0 when they already are)."""
        if n > self.burst:
            return math.inf
        missing = n - self.available(now)
        return max(0.0, missing / self.rate_per_s)

    def is_full(self, now: float) -> bool:
        return self.available(now) + _EPSILON >= self.burst


class KeyedBuckets:
    """One TokenBucket per key (e.g. a client IP), in bounded memory.

    A bucket that has refilled to `burst` is the same as a fresh one, so it is dropped; past
    `max_keys`, the least recently used bucket goes even if not full (that key starts afresh).
    """

    def __init__(self, rate_per_s: float, burst: float, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        TokenBucket(rate_per_s, burst)  # validates the arguments
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        # Least recently used first.
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable, now: float, n: float = 1) -> bool:
        self._prune(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.popitem(last=False)
            bucket = self._buckets[key] = TokenBucket(self.rate_per_s, self.burst)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now, n)

    def retry_after(self, key: Hashable, now: float, n: float = 1) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0 if n <= self.burst else math.inf
        return bucket.retry_after(now, n)

    def _prune(self, now: float) -> None:
        # The least recently used buckets are the likeliest to be full again.
        for _ in range(_PRUNE_PER_TAKE):
            if not self._buckets:
                return
            key, bucket = next(iter(self._buckets.items()))
            if not bucket.is_full(now):
                return
            del self._buckets[key]


class ConnectionCounter:
    """Open connections per key, at most `limit_per_key` each; keys at zero are forgotten."""

    def __init__(self, limit_per_key: int) -> None:
        if limit_per_key < 1:
            raise ValueError("limit_per_key must be at least 1")
        self.limit_per_key = limit_per_key
        self._counts: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._counts)

    def count(self, key: Hashable) -> int:
        return self._counts.get(key, 0)

    def acquire(self, key: Hashable) -> bool:
        count = self._counts.get(key, 0)
        if count >= self.limit_per_key:
            return False
        self._counts[key] = count + 1
        return True

    def release(self, key: Hashable) -> None:
        """Give back one connection of `key`; a release without an acquire is ignored."""
        count = self._counts.get(key, 0)
        if count <= 1:
            self._counts.pop(key, None)
        else:
            self._counts[key] = count - 1
