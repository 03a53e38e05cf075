"""Reconnect delays (protocol.md §6: 1 s, 2 s, 4 s with jitter, then give up)."""

from __future__ import annotations

import random
from collections.abc import Sequence

JITTER = 0.2


def jittered(delays: Sequence[float], rng: random.Random, jitter: float = JITTER) -> list[float]:
    """One reconnect schedule: each delay scaled by a random factor in [1-jitter, 1+jitter].

    Jitter spreads the reconnects of many clients dropped by the same event (a node restart)
    so they do not all hit the server in the same instant.
    """
    if not 0 <= jitter < 1:
        raise ValueError("jitter must be in [0, 1)")
    if any(d < 0 for d in delays):
        raise ValueError("backoff delays must not be negative")
    return [d * rng.uniform(1 - jitter, 1 + jitter) for d in delays]
