"""The embedded backend: the core state machine in this process.

Atomic because no method awaits anything while it changes state: each runs to completion
between two turns of the event loop.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pairline.core.matchmaker import Matchmaker
from pairline.core.rules import Rules
from pairline.store.base import Attached, Effects, Outcome, Reply, StateView


def random_suffix() -> str:
    return "_" + secrets.token_hex(4)


class MemoryStore:
    def __init__(self, rules: Rules, id_suffix: Callable[[], str] = random_suffix) -> None:
        counter = itertools.count(1)
        # Match ids: a counter, unique within the store, and a random suffix, unguessable.
        self.mm = Matchmaker(rules, lambda: f"m_{next(counter)}{id_suffix()}")

    async def attach(
        self, user_id: str, display_name: str, node_id: str, new_session_id: str, now: int
    ) -> Attached:
        session_id, fresh, effects = self.mm.attach(
            user_id, display_name, node_id, new_session_id, now
        )
        return Attached(session_id, fresh, effects, self.mm.order_of(user_id))

    async def renew_session(self, user_id: str, session_id: str) -> None:
        user = self.mm.users.get(user_id)
        if user is not None:
            user.session_id = session_id

    async def detach(self, user_id: str, session_id: str, now: int) -> Effects:
        return self.mm.detach(user_id, session_id, now)

    async def node_lost(self, node_id: str, now: int) -> Effects:
        return self.mm.node_lost(node_id, now)

    async def heard(self, user_id: str, now: int) -> Effects:
        return self.mm.heard(user_id, now)

    async def heard_many(self, user_ids: Sequence[str], now: int) -> Effects:
        return [effect for user_id in user_ids for effect in self.mm.heard(user_id, now)]

    async def join(
        self, user_id: str, interests: frozenset[str], lang: str | None, now: int
    ) -> Outcome:
        return self._outcome(user_id, *self.mm.join(user_id, interests, lang, now))

    async def leave(self, user_id: str, now: int) -> Outcome:
        return self._outcome(user_id, *self.mm.leave(user_id, now))

    async def skip(self, user_id: str, match_id: str, now: int) -> Outcome:
        return self._outcome(user_id, *self.mm.skip(user_id, match_id, now))

    async def end(self, user_id: str, match_id: str, now: int, *, block: bool = False) -> Outcome:
        return self._outcome(user_id, *self.mm.end(user_id, match_id, now, block=block))

    async def ack(self, user_id: str, match_id: str, now: int) -> Effects:
        return self.mm.ack(user_id, match_id, now)

    async def relay(
        self, user_id: str, match_id: str, message: dict[str, Any], now: int
    ) -> Effects:
        return self.mm.relay(user_id, match_id, message, now)

    async def media_lost(self, user_id: str, match_id: str, now: int) -> Effects:
        return self.mm.media_lost(user_id, match_id, now)

    async def media_gone(self, user_id: str, match_id: str, now: int) -> Effects:
        return self.mm.media_gone(user_id, match_id, now)

    async def media_absent(self, match_id: str, present: Sequence[str], now: int) -> Effects:
        return self.mm.media_absent(match_id, present, now)

    async def note_media_change(self, match_id: str, now: int) -> None:
        match = self.mm.matches.get(match_id)
        if match is not None:
            match.media_changed_at = now

    async def media_changed_at(self, match_id: str) -> int | None:
        match = self.mm.matches.get(match_id)
        return match.media_changed_at if match is not None else None

    async def live_matches(self, match_ids: Iterable[str]) -> set[str]:
        return {m for m in match_ids if m in self.mm.matches}

    async def population(self) -> dict[str, int]:
        counts = dict.fromkeys(("idle", "queued", "proposed", "in_call"), 0)
        for user in self.mm.users.values():
            counts[user.status.value] += 1
        return counts

    async def claim_duty(self, name: str, every_ms: int, now: int) -> bool:
        return True  # one node: every call is the only one

    async def expire(self, now: int) -> Effects:
        return self.mm.expire(now)

    async def sweep_stale(self, now: int) -> Effects:
        return self.mm.sweep_stale(now)

    async def next_deadline(self) -> int | None:
        return self.mm.next_deadline()

    async def snapshot(self, user_id: str, now: int) -> StateView:
        state = self.mm.snapshot(user_id, now)
        match_users = None
        if state["match"] is not None:
            match_users = self.mm.matches[state["match"]["match_id"]].users
        return StateView(state, match_users)

    async def queue_status(
        self, user_ids: Iterable[str], now: int
    ) -> dict[str, tuple[int, int | None, int]]:
        return self.mm.queue_status(user_ids, now)

    async def ban(self, user_id: str, until: int | None, now: int) -> Effects:
        return self.mm.ban(user_id, until, now)

    async def unban(self, user_id: str, now: int) -> None:
        self.mm.unban(user_id)

    async def unblock(self, blocker: str, blocked: str) -> None:
        self.mm.unblock(blocker, blocked)

    async def load_blocks(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.mm.load_blocks(pairs)

    async def load_bans(self, bans: Mapping[str, int | None]) -> None:
        self.mm.load_bans(bans)

    async def load_skip_penalties(self, records: Mapping[str, tuple[list[int], int, int]]) -> None:
        self.mm.load_skip_penalties(records)

    def overloaded(self) -> bool:
        return False  # a transition here never waits: it runs to its end in one go

    def shed_turn_ms(self) -> int:
        return 0  # (never asked: nothing is shed here)

    async def close(self) -> None:
        return None

    def _outcome(self, user_id: str, reply: Reply, effects: Effects) -> Outcome:
        return Outcome(reply, effects, self.mm.order_of(user_id))
