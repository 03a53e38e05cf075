"""What of a transition's effects becomes a durable record (pairline.records), and the journal
that must hold it before anyone is told."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from pairline.core import effects as fx
from pairline.records.events import (
    BlockAdded,
    CallConfirmed,
    CallEnded,
    Record,
    SkipPenaltySet,
)


class Journal(Protocol):
    """Durable storage for records: `append` returns once they survive a crash."""

    async def append(self, records: Sequence[Record]) -> None: ...


def records_of(
    effects: Sequence[fx.Effect], now: int, room_of: Callable[[str], str | None]
) -> list[Record]:
    """The records a transition's effects call for, in effect order."""
    out: list[Record] = []
    for effect in effects:
        if isinstance(effect, fx.Confirmed):
            match = effect.match
            confirmed_at = match.confirmed_at or now
            out.append(
                CallConfirmed(
                    match.match_id,
                    match.users,
                    room_of(match.match_id),
                    match.proposed_at or match.created_at,
                    confirmed_at,
                )
            )
        elif isinstance(effect, fx.CallEnded):
            match = effect.match
            out.append(
                CallEnded(
                    match.match_id,
                    match.users,
                    match.ended_at or now,
                    match.end_reason or "ended",
                    match.ended_by,
                )
            )
        elif isinstance(effect, fx.Blocked):
            out.append(BlockAdded(effect.blocker, effect.blocked, effect.match_id, now))
        elif isinstance(effect, fx.SkipPenaltyChanged):
            out.append(
                SkipPenaltySet(
                    effect.user_id,
                    list(effect.skips),
                    effect.level,
                    effect.cooldown_until,
                    now,
                )
            )
    return out
