"""The timing and limits the state machine obeys, in milliseconds (protocol.md §6, §8)."""

from __future__ import annotations

from dataclasses import dataclass

from pairline.settings import Settings


@dataclass(frozen=True, slots=True)
class Rules:
    health_fresh_ms: int = 2000
    health_timeout_ms: int = 2000
    ack_timeout_ms: int = 5000
    resume_window_ms: int = 10_000
    stale_after_ms: int = 30_000  # ping interval x missed pings
    interest_wait_ms: int = 5000
    rematch_after_ms: int = 300_000  # 0: rematch rule off
    skip_limit: int = 10  # 0: skip cool-down off
    skip_window_ms: int = 600_000
    cooldowns_ms: tuple[int, ...] = (60_000, 300_000, 900_000)
    good_call_ms: int = 60_000
    # Candidates looked at from the head of the queue per pairing attempt: a join costs
    # O(scan_limit), and the Redis backend must do the same inside one script.
    scan_limit: int = 256
    # Pairings remembered for the queue's ETA estimate.
    eta_window_ms: int = 60_000

    @classmethod
    def from_settings(cls, s: Settings) -> Rules:
        return cls(
            health_fresh_ms=s.health_fresh_ms,
            health_timeout_ms=s.health_timeout_ms,
            ack_timeout_ms=s.ack_timeout_ms,
            resume_window_ms=s.resume_window_ms,
            stale_after_ms=s.ping_interval_ms * s.ping_misses,
            interest_wait_ms=s.interest_wait_ms,
            rematch_after_ms=s.rematch_after_s * 1000,
            skip_limit=s.skip_limit,
            skip_window_ms=s.skip_window_s * 1000,
            cooldowns_ms=tuple(c * 1000 for c in s.skip_cooldowns_s),
            good_call_ms=s.good_call_s * 1000,
        )
