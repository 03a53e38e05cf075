"""Wall-clock milliseconds: the only clock the engine reads (the core is passed time)."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
