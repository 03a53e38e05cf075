"""Hypothesis drives random interleavings of every transition through the pure core and checks
protocol.md §4's invariants after each step, plus what each user was told: nobody in two matches,
blocked pairs never matched, banned users never queued, matched or even connected while banned,
and the skip records the engine would record (SkipPenaltyChanged) always the store's own."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pairline.core import effects as fx
from pairline.core.cooldown import SkipRecord
from pairline.core.matchmaker import Matchmaker
from pairline.core.model import MatchPhase, UserStatus
from pairline.core.protocol import CloseCode
from pairline.core.rules import Rules
from pairline.errors import ProtocolError

USERS = [f"u{i}" for i in range(4)]
RULES = Rules(
    health_fresh_ms=2000,
    health_timeout_ms=2000,
    ack_timeout_ms=5000,
    resume_window_ms=10_000,
    stale_after_ms=30_000,
    interest_wait_ms=5000,
    rematch_after_ms=60_000,
    skip_limit=3,
    skip_window_ms=600_000,
    cooldowns_ms=(60_000, 300_000),
    good_call_ms=60_000,
)
users = st.sampled_from(USERS)


def fingerprint(mm: Matchmaker) -> Any:
    return (
        sorted(
            (u.user_id, u.status, u.presence, u.match_id, u.ticket, u.session_id)
            for u in mm.users.values()
        ),
        list(mm.queue),
        sorted((m.match_id, m.phase, tuple(sorted(m.acked))) for m in mm.matches.values()),
        {k: set(v) for k, v in mm.compat.blocks.items()},
        dict(mm.bans),
        {k: (list(r.skips), r.level, r.cooldown_until) for k, r in mm.skips.items()},
    )


class MatchmakerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        ids = itertools.count()
        self.mm = Matchmaker(RULES, lambda: f"m{next(ids)}")
        self.now = 1_000_000
        self.sessions = itertools.count()
        self.blocks: set[tuple[str, str]] = set()  # (blocker, blocked)
        self.bans: dict[str, int | None] = {}  # user → banned until (None: for good)
        self.penalties: dict[str, tuple[tuple[int, ...], int, int]] = {}  # as last recorded
        self.live_match: dict[str, str] = {}  # user → match it was told `matched` and not ended
        self.confirmed: set[str] = set()
        self.orders: dict[str, int] = {}  # the last event order each user was sent

    def blocked(self, a: str, b: str) -> bool:
        return (a, b) in self.blocks or (b, a) in self.blocks

    def banned(self, user_id: str) -> bool:
        if user_id not in self.bans:
            return False
        until = self.bans[user_id]
        return until is None or until > self.now

    def check_order(self, user_id: str, order: int) -> None:
        """A user's events are numbered 1, 2, 3, … in the order they are produced."""
        assert order == self.orders.get(user_id, 0) + 1, (user_id, order, self.orders)
        self.orders[user_id] = order

    # ---------------------------------------------------------------- bookkeeping of effects

    def apply(self, effects: list[fx.Effect]) -> None:
        # A transition's skip records come last, one per user whose record changed.
        kinds = [isinstance(e, fx.SkipPenaltyChanged) for e in effects]
        assert kinds == sorted(kinds), "SkipPenaltyChanged before another effect"
        changed = [e.user_id for e in effects if isinstance(e, fx.SkipPenaltyChanged)]
        assert len(changed) == len(set(changed)), effects
        for effect in effects:
            if isinstance(effect, fx.Send):
                self.check_order(effect.user_id, effect.order)
                self.observe(effect.user_id, effect.message)
            elif isinstance(effect, fx.Confirmed):
                a, b = effect.match.users
                assert self.live_match.get(a) == effect.match.match_id
                assert self.live_match.get(b) == effect.match.match_id
                assert self.mm.users[a].status is UserStatus.IN_CALL
                assert self.mm.users[b].status is UserStatus.IN_CALL
                self.confirmed.add(effect.match.match_id)
                for uid, order in zip(effect.match.users, effect.orders, strict=True):
                    self.check_order(uid, order)
            elif isinstance(effect, fx.EndSession):
                self.live_match.pop(effect.user_id, None)
                self.orders.pop(effect.user_id, None)  # a new session's events count afresh
            elif isinstance(effect, fx.Blocked):
                self.blocks.add((effect.blocker, effect.blocked))
            elif isinstance(effect, fx.SkipPenaltyChanged):
                self.penalties[effect.user_id] = (effect.skips, effect.level, effect.cooldown_until)

    def observe(self, user_id: str, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "matched":
            partner = message["partner"]["user_id"]
            assert partner != user_id
            assert not self.blocked(user_id, partner), "blocked pair matched"
            assert not self.banned(user_id) and not self.banned(partner), "banned user matched"
            assert user_id not in self.live_match, f"{user_id} matched twice"
            self.live_match[user_id] = message["match_id"]
        elif kind == "match_cancelled" and user_id not in self.live_match:
            # A proposal that failed its health check before `matched` went out: the healthy
            # side hears of it only to learn it keeps its place.
            assert message["requeued"], message
        elif kind in ("match_cancelled", "partner_left"):
            assert self.live_match.get(user_id) == message["match_id"], (user_id, message)
            del self.live_match[user_id]
            if message["requeued"]:
                assert self.mm.users[user_id].status in (
                    UserStatus.QUEUED,
                    UserStatus.PROPOSED,
                ), message

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        before = fingerprint(self.mm)
        try:
            result = fn(*args, **kwargs)
        except ProtocolError:
            assert fingerprint(self.mm) == before, "a refused command changed the state"
            return None
        # A call the actor ended itself is resolved by its reply, which goes out before the
        # effects; a proposal never is: every `matched` must be answered by match_confirmed,
        # match_cancelled or the session's end.
        actor = self.mm.users.get(args[0])
        told = self.live_match.get(args[0])
        if actor is not None and told in self.confirmed and actor.match_id != told:
            del self.live_match[args[0]]
        effects = result[-1] if isinstance(result, tuple) else result
        self.apply(effects)
        return result

    def match_of(self, user_id: str) -> str:
        user = self.mm.users.get(user_id)
        if user and user.match_id:
            return user.match_id
        if user and user.last_match_id:
            return user.last_match_id
        return "m-unknown"

    # ---------------------------------------------------------------- rules

    @rule(user=users)
    def hello(self, user: str) -> None:
        self.call(self.mm.attach, user, user.upper(), "n1", f"s{next(self.sessions)}", self.now)

    @rule(user=users)
    def drop(self, user: str) -> None:
        session = self.mm.session_of(user)
        if session:
            self.call(self.mm.detach, user, session, self.now)

    @rule(
        user=users,
        interests=st.sets(st.sampled_from(["a", "b"])),
        lang=st.sampled_from([None, "en", "fr"]),
    )
    def join(self, user: str, interests: set[str], lang: str | None) -> None:
        self.call(self.mm.join, user, frozenset(interests), lang, self.now)

    @rule(user=users)
    def leave(self, user: str) -> None:
        self.call(self.mm.leave, user, self.now)

    @rule(user=users)
    def ack(self, user: str) -> None:
        if user in self.mm.users:
            self.call(self.mm.heard, user, self.now)
            self.call(self.mm.ack, user, self.match_of(user), self.now)

    @rule(user=users)
    def heard(self, user: str) -> None:
        self.call(self.mm.heard, user, self.now)

    @rule(user=users)
    def skip(self, user: str) -> None:
        self.call(self.mm.skip, user, self.match_of(user), self.now)

    @rule(user=users, block=st.booleans())
    def end(self, user: str, block: bool) -> None:
        self.call(self.mm.end, user, self.match_of(user), self.now, block=block)

    @rule(user=users)
    def chat(self, user: str) -> None:
        self.call(
            self.mm.relay, user, self.match_of(user), {"type": "chat", "text": "hi"}, self.now
        )

    @rule(user=users)
    def media_lost(self, user: str) -> None:
        self.call(self.mm.media_lost, user, self.match_of(user), self.now)

    @rule(user=users)
    def media_gone(self, user: str) -> None:
        self.call(self.mm.media_gone, user, self.match_of(user), self.now)

    @rule(user=users, present=st.lists(users, max_size=2, unique=True))
    def media_absent(self, user: str, present: list[str]) -> None:
        self.call(self.mm.media_absent, self.match_of(user), present, self.now)

    @rule(user=users, interests=st.sets(st.sampled_from(["a", "b"])))
    def hello_and_join(self, user: str, interests: set[str]) -> None:
        if user not in self.mm.users:
            self.hello(user)
        self.call(self.mm.join, user, frozenset(interests), None, self.now)

    @rule()
    def everyone_answers_and_acks(self) -> None:
        for user_id in list(self.mm.users):
            self.call(self.mm.heard, user_id, self.now)
        for match in list(self.mm.matches.values()):
            for user_id in match.users:
                self.call(self.mm.ack, user_id, match.match_id, self.now)

    @rule(user=users, ban_ms=st.sampled_from([None, 0, 1000, 15_000]))
    def ban(self, user: str, ban_ms: int | None) -> None:
        until = None if ban_ms is None else self.now + ban_ms
        session = self.mm.users.get(user)
        effects = self.call(self.mm.ban, user, until, self.now)
        self.bans[user] = until
        if session is not None and self.banned(user):
            close = fx.EndSession(user, session.node_id, session.session_id, CloseCode.BANNED)
            assert close in effects
            assert user not in self.mm.users
        else:
            assert not any(isinstance(e, fx.EndSession) for e in effects)

    @rule(pick=st.integers(0, 3), ban_ms=st.sampled_from([None, 15_000]))
    def ban_someone_matched(self, pick: int, ban_ms: int | None) -> None:
        """Bans of users in a proposal, health check or call, which random bans rarely hit."""
        matched = sorted(uid for uid, u in self.mm.users.items() if u.match_id)
        if matched:
            self.ban(matched[pick % len(matched)], ban_ms)

    @rule(user=users)
    def unban(self, user: str) -> None:
        self.mm.unban(user)
        self.bans.pop(user, None)

    @rule(blocker=users, blocked=users)
    def unblock(self, blocker: str, blocked: str) -> None:
        self.mm.unblock(blocker, blocked)
        self.blocks.discard((blocker, blocked))

    @rule(dt=st.one_of(st.integers(0, 1500), st.integers(0, 12_000)))
    def time_passes(self, dt: int) -> None:
        self.now += dt
        self.apply(self.mm.expire(self.now))

    @rule()
    def sweep(self) -> None:
        self.apply(self.mm.sweep_stale(self.now))

    # ---------------------------------------------------------------- invariants

    @invariant()
    def protocol_invariants(self) -> None:
        self.mm.check_invariants()

    @invariant()
    def banned_users_are_gone(self) -> None:
        """A banned user has no session while banned: never queued, matched, or in a call."""
        for user_id in self.mm.users:
            assert not self.banned(user_id), user_id
        for user_id in USERS:
            assert self.mm.is_banned(user_id, self.now) == self.banned(user_id)

    @invariant()
    def blocks_are_as_set_and_lifted(self) -> None:
        for a in USERS:
            for b in USERS:
                assert self.mm.compat.is_blocked(a, b) == self.blocked(a, b), (a, b)

    @invariant()
    def recorded_skip_penalties_are_the_stores(self) -> None:
        """What SkipPenaltyChanged carried is every skip record the state has; one it no longer
        has was blank, so forgetting it loses nothing."""
        for user_id in set(self.mm.skips) | set(self.penalties):
            record = self.mm.skips.get(user_id)
            recorded = self.penalties.get(user_id)
            if record is None:
                assert recorded is not None
                skips, level, cooldown_until = recorded
                assert SkipRecord(list(skips), level, cooldown_until).is_blank(self.now, RULES)
            else:
                assert recorded == (tuple(record.skips), record.level, record.cooldown_until)

    @invariant()
    def told_state_matches_real_state(self) -> None:
        for user_id, match_id in self.live_match.items():
            user = self.mm.users.get(user_id)
            assert user is not None and user.match_id == match_id, (user_id, match_id, user)
        for match in self.mm.matches.values():
            if match.phase in (MatchPhase.PROPOSED, MatchPhase.CONFIRMED):
                for uid in match.users:
                    assert self.live_match.get(uid) == match.match_id

    @invariant()
    def deadlines_pending_for_open_proposals(self) -> None:
        next_at = self.mm.next_deadline()
        for match in self.mm.matches.values():
            if match.phase in (MatchPhase.CHECKING, MatchPhase.PROPOSED):
                assert next_at is not None and next_at <= self.now + RULES.ack_timeout_ms


TestMatchmaker = pytest.mark.timeout(300)(MatchmakerMachine.TestCase)
TestMatchmaker.settings = settings(
    max_examples=200,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
