"""The matchmaking state machine: every transition of queue and match state, pure and synchronous.

Each public method is one atomic transition. It validates first and raises a `ProtocolError`
before changing anything, or changes the state and returns the effects the engine must carry out
(messages to users, pings, closes). Time is passed in as epoch milliseconds; deadlines live in the
state (`DeadlineBook`), and `expire(now)` completes whichever are due.

The invariants (protocol.md §4), which `check_invariants` verifies and the property tests drive:
a user is in exactly one state; in at most one match; blocked pairs are never matched; a match is
confirmed for both sides or for neither. A banned user has no session while its ban lasts, so it is
never queued or matched.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from pairline.core import effects as fx
from pairline.core.cooldown import SkipRecord
from pairline.core.deadlines import DeadlineBook
from pairline.core.model import (
    TICKS_PER_MS,
    DeadlineKind,
    Match,
    MatchPhase,
    Preferences,
    Presence,
    User,
    UserStatus,
    ticket_ms,
)
from pairline.core.policy import Compatibility, PairingRate
from pairline.core.protocol import CloseCode
from pairline.core.rules import Rules
from pairline.core.waitqueue import WaitQueue
from pairline.errors import Banned, Cooldown, InvalidState, NotFound

Effects = list[fx.Effect]
Reply = dict[str, Any]


class Matchmaker:
    """All users, the queue and the matches of one matchmaking domain."""

    def __init__(self, rules: Rules, new_id: Callable[[], str]) -> None:
        self.rules = rules
        self._new_id = new_id
        self.users: dict[str, User] = {}
        self.queue = WaitQueue()
        self.matches: dict[str, Match] = {}
        self.compat = Compatibility(rules)
        self.skips: dict[str, SkipRecord] = {}
        self.bans: dict[str, int | None] = {}  # user → banned until (epoch ms; None: for good)
        # Skip records changed by the running transition, in the order they first changed: its
        # SkipPenaltyChanged effects, emitted after all its others (`_penalties_changed`).
        self._changed_skips: dict[str, SkipRecord] = {}
        self.deadlines = DeadlineBook()
        self.rate = PairingRate(rules.eta_window_ms)
        self._last_ticket = 0

    # ------------------------------------------------------------------ sessions and liveness

    def attach(
        self, user_id: str, display_name: str, node_id: str, new_session_id: str, now: int
    ) -> tuple[str, bool, Effects]:
        """A connection says hello: continue the user's session, or open `new_session_id`.

        Returns (session id, whether it is new, effects). A session that carries on comes back
        online: its partner hears `partner_resumed`, and a queued user may be paired again.
        A banned user is refused (`Banned`): the gateway closes its connection with 4403.
        """
        self._refuse_if_banned(user_id, now)
        user = self.users.get(user_id)
        if user is None:
            self.users[user_id] = User(
                user_id, display_name, new_session_id, node_id, Presence.ONLINE, last_heard=now
            )
            return new_session_id, True, []
        effects: Effects = []
        if user.node_id != node_id:
            # Taken over from another node: that node drops its copy of the session, closing
            # the connection if it still has one.
            code = CloseCode.REPLACED if user.presence is Presence.ONLINE else None
            effects.append(fx.EndSession(user_id, user.node_id, user.session_id, code))
        user.node_id = node_id
        user.last_heard = now
        if user.presence is Presence.AWAY:
            user.presence = Presence.ONLINE
            user.away_since = None
            self.deadlines.cancel(DeadlineKind.RESUME, user_id)
            if user.status is UserStatus.IN_CALL and user.match_id:
                match = self.matches[user.match_id]
                effects.append(self._send(match.partner_of(user_id), _partner_resumed(match)))
            self._try_pair(user, now, effects)
        return user.session_id, False, effects

    def detach(self, user_id: str, session_id: str, now: int) -> Effects:
        """The session's connection dropped: start the resume window."""
        user = self.users.get(user_id)
        if user is None or user.session_id != session_id or user.presence is Presence.AWAY:
            return []
        effects: Effects = []
        user.presence = Presence.AWAY
        user.away_since = now
        self._set_deadline(DeadlineKind.RESUME, user_id, now + self.rules.resume_window_ms, effects)
        match = self.matches.get(user.match_id) if user.match_id else None
        if match is None:
            return effects
        partner = match.partner_of(user_id)
        if match.phase is MatchPhase.CONFIRMED:
            grace = {"match_id": match.match_id, "grace_ms": self.rules.resume_window_ms}
            effects.append(self._send(partner, {"type": "partner_reconnecting", **grace}))
        else:
            # A proposal cannot wait for a user who is gone: the partner goes back at once, and
            # the dropped user keeps its place too (it is not proposed while away).
            self._cancel(
                match,
                now,
                effects,
                reason="disconnected",
                outcomes={partner: ("partner_unreachable", True), user_id: ("disconnected", True)},
            )
        return effects

    def node_lost(self, node_id: str, now: int) -> Effects:
        """A node died: detach every user still online there, as if each connection dropped."""
        effects: Effects = []
        for user in [u for u in self.users.values() if u.node_id == node_id]:
            effects += self.detach(user.user_id, user.session_id, now)
        return effects

    def heard(self, user_id: str, now: int) -> Effects:
        """Any message from the user: it is alive, and may answer a pending health check."""
        user = self.users.get(user_id)
        if user is None:
            return []
        user.last_heard = now
        if user.match_id is None:
            return []
        match = self.matches[user.match_id]
        if user_id not in match.probing:
            return []
        del match.probing[user_id]
        effects: Effects = []
        if match.phase is MatchPhase.CHECKING and not match.probing:
            self.deadlines.cancel(DeadlineKind.HEALTH_CHECK, match.match_id)
            self._propose(match, now, effects)
        elif match.phase is MatchPhase.CONFIRMED and not match.probing:
            self.deadlines.cancel(DeadlineKind.MEDIA_CHECK, match.match_id)
        return effects

    def _heard_now(self, user: User, now: int) -> None:
        """A join or skip is word from the user: it is alive now. Its connection layer tells
        the store of messages in batches, after the command ran; without this, every pairing
        of a user whose last pong was over `health_fresh_ms` ago would health-check it first
        (and under load such checks time out and cost the user its session)."""
        user.last_heard = now

    def sweep_stale(self, now: int) -> Effects:
        """Users whose open connection missed its pings: out of queue and call, and closed."""
        effects: Effects = []
        cutoff = now - self.rules.stale_after_ms
        stale = [
            u
            for u in self.users.values()
            if u.presence is Presence.ONLINE and u.last_heard < cutoff
        ]
        for user in stale:
            self._drop_stale(user, now, effects, call_reason="timed_out")
        self.compat.prune(now)
        for user_id in [k for k, rec in self.skips.items() if rec.is_blank(now, self.rules)]:
            del self.skips[user_id]
        for user_id in [k for k, until in self.bans.items() if until is not None and until <= now]:
            del self.bans[user_id]
        self._penalties_changed(effects)
        return effects

    # ------------------------------------------------------------------ commands

    def join(
        self, user_id: str, interests: frozenset[str], lang: str | None, now: int
    ) -> tuple[Reply, Effects]:
        user = self._user(user_id)
        self._refuse_if_banned(user_id, now)
        if user.status is not UserStatus.IDLE:
            raise InvalidState.expected("join", "idle", self._status_name(user))
        self._refuse_if_cooling(user_id, now)
        self._heard_now(user, now)
        user.prefs = Preferences(interests, lang or None)
        effects: Effects = []
        self._enqueue(user, self._new_ticket(now))
        reply = self._queue_reply(user, now)
        self._try_pair(user, now, effects)
        return reply, effects

    def leave(self, user_id: str, now: int) -> tuple[Reply, Effects]:
        user = self._user(user_id)
        effects: Effects = []
        if user.status is UserStatus.QUEUED:
            self._dequeue(user)
        elif user.status is UserStatus.PROPOSED and user.match_id:
            match = self.matches[user.match_id]
            self._cancel(
                match,
                now,
                effects,
                reason="left",
                outcomes={
                    match.partner_of(user_id): ("partner_left", True),
                    user_id: (_leaver_reason(match), False),
                },
            )
        else:
            raise InvalidState.expected("leave", "queued or proposed", self._status_name(user))
        return {}, effects

    def skip(self, user_id: str, match_id: str, now: int) -> tuple[Reply, Effects]:
        user = self._user(user_id)
        match = self._call_for(user, match_id, "skip")
        if match is None:  # the partner ended it first: already over, not counted
            return self._queue_reply(user, now, requeued=user.status is not UserStatus.IDLE), []
        self._refuse_if_cooling(user_id, now)
        self._heard_now(user, now)
        effects: Effects = []
        partner = match.partner_of(user_id)
        self._end_call(match, now, "skipped", user_id, effects)
        record = self.skips.setdefault(user_id, SkipRecord())
        cooldown = record.record_skip(now, self.rules)
        if self.rules.skip_limit > 0:  # else nothing is counted
            self._changed_skips[user_id] = record
        self._requeue_partner(partner, match, "skipped", now, effects)
        if cooldown:
            reply: Reply = {"requeued": False, "position": None, "eta_ms": None}
            reply["cooldown_ms"] = cooldown
        else:
            self._enqueue(user, self._new_ticket(now))  # after the partner it left behind
            reply = self._queue_reply(user, now, requeued=True)
        self._pair_requeued((partner, user_id), now, effects)
        self._penalties_changed(effects)
        return reply, effects

    def end(
        self, user_id: str, match_id: str, now: int, *, block: bool = False
    ) -> tuple[Reply, Effects]:
        """`end`, and `block`/`report` (which end the call the same way, then block)."""
        user = self._user(user_id)
        match = self._call_for(user, match_id, "block" if block else "end")
        effects: Effects = []
        if match is None:  # already over: a late end takes the user out of the queue again
            partner = user.last_partner_id
            self._withdraw(user, now, effects)
        else:
            partner = match.partner_of(user_id)
            self._end_call(match, now, "ended", user_id, effects)
            self._requeue_partner(partner, match, "ended", now, effects)
            self._pair_requeued((partner,), now, effects)
        if block and partner:
            self.compat.block(user_id, partner)
            effects.append(fx.Blocked(user_id, partner, match_id))
        self._penalties_changed(effects)
        return {}, effects

    # ------------------------------------------------------------------ moderation

    def ban(self, user_id: str, until: int | None, now: int) -> Effects:
        """Ban the user until `until` (epoch ms; None: for good), replacing any ban it has.

        While the ban lasts, `attach` and `join` refuse it with `Banned`. It acts at once: the
        user leaves its queue place (told `queue_cancelled{reason: banned}`), its proposal (the
        partner is told `match_cancelled{reason: partner_left}` and keeps its place) or its call
        (ended with reason "banned"; the partner is told `partner_left{reason: ended}` and
        re-queued), and its session ends with close code 4403: nothing of it is left to resume.
        A user without a session, or a ban already over at `now`, is only recorded.
        """
        self.bans[user_id] = until
        user = self.users.get(user_id)
        effects: Effects = []
        if user is None or not self.is_banned(user_id, now):
            return effects
        match = self.matches.get(user.match_id) if user.match_id else None
        if user.status is UserStatus.QUEUED or (
            match is not None and match.phase is MatchPhase.CHECKING
        ):  # queued, as far as it knows
            effects.append(self._send(user_id, dict(_QUEUE_BANNED)))
        if user.status is UserStatus.QUEUED:
            self._dequeue(user)
        elif match is not None:
            partner = match.partner_of(user_id)
            if match.phase is MatchPhase.CONFIRMED:
                self._end_call(match, now, "banned", user_id, effects)
                self._requeue_partner(partner, match, "ended", now, effects)
                self._pair_requeued((partner,), now, effects)
            else:
                outcomes = {partner: ("partner_left", True), user_id: ("", False)}
                self._cancel(match, now, effects, reason="banned", outcomes=outcomes)
        self.deadlines.cancel(DeadlineKind.INTEREST, user_id)
        self._end_session(user, effects, close_code=CloseCode.BANNED)
        self._penalties_changed(effects)
        return effects

    def unban(self, user_id: str) -> None:
        """Lift the user's ban, if it has one."""
        self.bans.pop(user_id, None)

    def is_banned(self, user_id: str, now: int) -> bool:
        """Whether a ban holds the user at `now` (one whose end has come no longer does)."""
        if user_id not in self.bans:
            return False
        until = self.bans[user_id]
        return until is None or until > now

    def unblock(self, blocker: str, blocked: str) -> None:
        """Lift `blocker`'s block of `blocked`; a block the other way stays."""
        self.compat.unblock(blocker, blocked)

    # ------------------------------------------------------------------ loading the records

    def load_blocks(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Add these (blocker, blocked) blocks to those the state has."""
        for blocker, blocked in pairs:
            self.compat.block(blocker, blocked)

    def load_bans(self, bans: Mapping[str, int | None]) -> None:
        """Record these bans (user → until; None: for good), replacing the state's ban of the
        same user: the records are the authority on bans. Nobody is removed (that is `ban`'s
        work); a loaded ban refuses the user's next hello and join."""
        self.bans.update(bans)

    def load_skip_penalties(self, records: Mapping[str, tuple[list[int], int, int]]) -> None:
        """Add these skip records (user → (skip times, level, cooldown_until)) for users the
        state has none for: a record the state holds is as new as the stored one or newer."""
        for user_id, (skips, level, cooldown_until) in records.items():
            if user_id not in self.skips:
                self.skips[user_id] = SkipRecord(sorted(skips), level, cooldown_until)

    def ack(self, user_id: str, match_id: str, now: int) -> Effects:
        """The user acked its `matched`; the second ack confirms the match for both."""
        match = self.matches.get(match_id)
        if match is None or match.phase is not MatchPhase.PROPOSED or user_id not in match.users:
            return []
        match.acked.add(user_id)
        if len(match.acked) < 2:
            return []
        self.deadlines.cancel(DeadlineKind.ACK, match_id)
        match.phase = MatchPhase.CONFIRMED
        match.confirmed_at = now
        for uid in match.users:
            self.users[uid].status = UserStatus.IN_CALL
        self.rate.record(now)
        a, b = (self.users[uid] for uid in match.users)
        a.order += 1
        b.order += 1
        return [fx.Confirmed(match, (a.node_id, b.node_id), (a.order, b.order))]

    def relay(self, user_id: str, match_id: str, message: dict[str, Any], now: int) -> Effects:
        """`chat` and `signal`: passed to the partner, only within the call."""
        user = self._user(user_id)
        match = self._current_call(user, match_id, message["type"])
        message["match_id"] = match_id
        message["ts"] = now
        return [self._send(match.partner_of(user_id), message)]

    def media_lost(self, user_id: str, match_id: str, now: int) -> Effects:
        """The user's media link failed: health-check the partner now."""
        user = self._user(user_id)
        match = self._current_call(user, match_id, "media_lost")
        effects: Effects = []
        self._check_media(match, self.users[match.partner_of(user_id)], now, effects)
        return effects

    def media_gone(self, user_id: str, match_id: str, now: int) -> Effects:
        """The media server saw the user's media leave the call's room. If its connection is
        gone too, the call ends now, as at the end of its resume window; if not, it is
        health-checked now. Nothing if that call is already over."""
        user = self.users.get(user_id)
        match = self.matches.get(match_id)
        if user is None or match is None or user.match_id != match_id:
            return []
        if match.phase is not MatchPhase.CONFIRMED:
            return []
        effects: Effects = []
        if user.presence is Presence.AWAY:
            self._resume_window_over(user_id, now, effects)
        else:
            self._check_media(match, user, now, effects)
        self._penalties_changed(effects)
        return effects

    def media_absent(self, match_id: str, present: Collection[str], now: int) -> Effects:
        """The call's media room has had only `present` in it for too long: one user sat alone
        (the other's media never came, or left and did not come back), or the media server
        closed the empty room. The call ends: a missing user whose connection is away ends as
        at the end of its resume window; otherwise both are told `partner_left{disconnected}`
        and re-queued, the one who waited in the room first. Nothing if the call is over or
        both are present."""
        match = self.matches.get(match_id)
        if match is None or match.phase is not MatchPhase.CONFIRMED:
            return []
        missing = [uid for uid in match.users if uid not in present]
        if not missing:
            return []
        effects: Effects = []
        away = [uid for uid in missing if self.users[uid].presence is Presence.AWAY]
        if away:
            self._resume_window_over(away[0], now, effects)
        else:
            alone = len(missing) == 1
            reason = "alone_in_room" if alone else "room_closed"
            self._end_call(match, now, reason, missing[0] if alone else None, effects)
            requeued = [uid for uid in match.users if uid not in missing] + missing
            for uid in requeued:
                self._requeue_partner(uid, match, "disconnected", now, effects)
            self._pair_requeued(requeued, now, effects)
        self._penalties_changed(effects)
        return effects

    def _check_media(self, match: Match, target: User, now: int, effects: Effects) -> None:
        """Health-check `target`, one side of a confirmed call, now."""
        if target.presence is not Presence.ONLINE or target.user_id in match.probing:
            return  # already away (the resume window decides) or already being checked
        match.probing[target.user_id] = now
        effects.append(fx.Probe(target.user_id, target.node_id))
        deadline = now + self.rules.health_timeout_ms
        self._set_deadline(DeadlineKind.MEDIA_CHECK, match.match_id, deadline, effects)

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> int | None:
        return self.deadlines.next_at()

    def expire(self, now: int) -> Effects:
        """Complete every deadline due at `now`: failed checks, ack timeouts, resume windows."""
        effects: Effects = []
        while (due := self.deadlines.pop_due(now)) is not None:
            kind, key = due
            if kind is DeadlineKind.HEALTH_CHECK:
                self._health_check_failed(key, now, effects)
            elif kind is DeadlineKind.ACK:
                self._ack_timed_out(key, now, effects)
            elif kind is DeadlineKind.RESUME:
                self._resume_window_over(key, now, effects)
            elif kind is DeadlineKind.INTEREST:
                user = self.users.get(key)
                if user is not None:
                    self._try_pair(user, now, effects)
            elif kind is DeadlineKind.MEDIA_CHECK:
                self._media_check_failed(key, now, effects)
        self._penalties_changed(effects)
        return effects

    # ------------------------------------------------------------------ reads

    def snapshot(self, user_id: str, now: int) -> dict[str, Any]:
        """The user's full state (protocol.md §4), without media (the engine adds it)."""
        user = self.users.get(user_id)
        record = self.skips.get(user_id)
        cooling = record.remaining_ms(now) if record else 0
        out: dict[str, Any] = {
            "status": "idle",
            "position": None,
            "eta_ms": None,
            "match": None,
            "cooldown_ms": cooling or None,
        }
        if user is None:
            return out
        out["status"] = self._status_name(user)
        if user.status is UserStatus.QUEUED:
            out["position"], out["eta_ms"] = self._position(user_id, now)
        elif out["status"] == "queued":
            out["position"] = 1  # reserved for a proposal being health-checked: next in line
        match = self.matches.get(user.match_id) if user.match_id else None
        if match is not None and match.phase is not MatchPhase.CHECKING:
            partner = self.users[match.partner_of(user_id)]
            out["match"] = {
                "match_id": match.match_id,
                "partner": _partner_info(partner, match),
                "media": None,
            }
        return out

    def queue_status(
        self, user_ids: Iterable[str], now: int
    ) -> dict[str, tuple[int, int | None, int]]:
        """(position, eta_ms, event order) of each of these users that is queued; the order
        lets a push computed before a later event be recognised as stale."""
        out: dict[str, tuple[int, int | None, int]] = {}
        for uid in user_ids:
            if uid in self.queue:
                out[uid] = (*self._position(uid, now), self.users[uid].order)
        return out

    def order_of(self, user_id: str) -> int:
        """The user's event order so far: a session opened now expects the next one."""
        user = self.users.get(user_id)
        return user.order if user else 0

    def session_of(self, user_id: str) -> str | None:
        user = self.users.get(user_id)
        return user.session_id if user else None

    def check_invariants(self) -> None:
        """Assert protocol.md §4's invariants over the whole state (for tests)."""
        in_match: dict[str, str] = {}
        for match in self.matches.values():
            assert match.phase is not MatchPhase.ENDED, match
            a, b = match.users
            assert a != b
            assert not self.compat.is_blocked(a, b), f"blocked pair matched: {match}"
            for uid in match.users:
                assert uid not in in_match, f"{uid} in two matches"
                in_match[uid] = match.match_id
                user = self.users[uid]
                assert user.match_id == match.match_id
                want = (
                    UserStatus.IN_CALL
                    if match.phase is MatchPhase.CONFIRMED
                    else UserStatus.PROPOSED
                )
                assert user.status is want, (user, match)
        for uid, user in self.users.items():
            assert (uid in self.queue) == (user.status is UserStatus.QUEUED), user
            if user.status in (UserStatus.PROPOSED, UserStatus.IN_CALL):
                assert in_match.get(uid) == user.match_id, user
            else:
                assert user.match_id is None, user
        assert all(uid in self.users for uid in self.queue)
        assert not self._changed_skips, "skip records changed but not emitted"

    # ------------------------------------------------------------------ pairing

    def _try_pair(self, user: User, now: int, effects: Effects) -> None:
        """Pair a queued, online user with the longest-waiting compatible one, if any."""
        if user.status is not UserStatus.QUEUED or user.presence is not Presence.ONLINE:
            return
        assert user.ticket is not None
        partner = self._find_partner(user, now)
        if partner is None:
            since = ticket_ms(user.ticket)
            if self.compat.wants_shared(user.prefs, since, now):
                at = since + self.rules.interest_wait_ms
                self._set_deadline(DeadlineKind.INTEREST, user.user_id, at, effects)
            return
        self._reserve(user, partner, now, effects)

    def _find_partner(self, user: User, now: int) -> User | None:
        assert user.ticket is not None
        since = ticket_ms(user.ticket)
        for candidate_id in self.queue.head(self.rules.scan_limit):
            candidate = self.users[candidate_id]
            if candidate.presence is not Presence.ONLINE or candidate_id == user.user_id:
                continue
            assert candidate.ticket is not None
            if self.compat.compatible(
                user.user_id,
                user.prefs,
                since,
                candidate_id,
                candidate.prefs,
                ticket_ms(candidate.ticket),
                now,
            ):
                return candidate
        return None

    def _reserve(self, a: User, b: User, now: int, effects: Effects) -> None:
        """Take both out of the queue into one match, then health-check or propose."""
        a_ticket, b_ticket = a.ticket, b.ticket
        assert a_ticket is not None and b_ticket is not None
        first, second = (a, b) if a_ticket < b_ticket else (b, a)
        common = tuple(sorted(first.prefs.interests & second.prefs.interests))
        match = Match(
            match_id=self._new_id(),
            users=(first.user_id, second.user_id),
            phase=MatchPhase.CHECKING,
            created_at=now,
            common_interests=common,
            tickets={a.user_id: a_ticket, b.user_id: b_ticket},
        )
        self.matches[match.match_id] = match
        for user in (first, second):
            self._dequeue(user, status=UserStatus.PROPOSED)
            user.match_id = match.match_id
            self.deadlines.cancel(DeadlineKind.INTEREST, user.user_id)
            if now - user.last_heard > self.rules.health_fresh_ms:
                match.probing[user.user_id] = now
                effects.append(fx.Probe(user.user_id, user.node_id))
        if match.probing:
            at = now + self.rules.health_timeout_ms
            self._set_deadline(DeadlineKind.HEALTH_CHECK, match.match_id, at, effects)
        else:
            self._propose(match, now, effects)

    def _propose(self, match: Match, now: int, effects: Effects) -> None:
        match.phase = MatchPhase.PROPOSED
        match.proposed_at = now
        at = now + self.rules.ack_timeout_ms
        self._set_deadline(DeadlineKind.ACK, match.match_id, at, effects)
        for uid in match.users:
            partner = self.users[match.partner_of(uid)]
            effects.append(
                self._send(
                    uid,
                    {
                        "type": "matched",
                        "match_id": match.match_id,
                        "partner": _partner_info(partner, match),
                        "ack_within_ms": self.rules.ack_timeout_ms,
                    },
                )
            )

    def _pair_requeued(self, user_ids: Iterable[str], now: int, effects: Effects) -> None:
        for uid in user_ids:
            user = self.users.get(uid)
            if user is not None:
                self._try_pair(user, now, effects)

    # ------------------------------------------------------------------ failures and endings

    def _cancel(
        self,
        match: Match,
        now: int,
        effects: Effects,
        *,
        reason: str,
        outcomes: dict[str, tuple[str, bool]],
    ) -> None:
        """Roll a proposal back. `outcomes`: user → (reason told, back in the queue?).

        A user going back returns to its original place; one that is not becomes idle. Users
        whose reason is empty are not told (they asked for it, or are being closed).
        """
        del self.matches[match.match_id]
        self.deadlines.cancel(DeadlineKind.HEALTH_CHECK, match.match_id)
        self.deadlines.cancel(DeadlineKind.ACK, match.match_id)
        detail = {
            uid: {
                "presence": self.users[uid].presence.value,
                "last_heard": self.users[uid].last_heard,
                "acked": uid in match.acked,
                "probing": uid in match.probing,
                "outcome": outcomes[uid][0] or "left",
            }
            for uid in match.users
        }
        effects.append(fx.MatchFailed(match, reason, detail))
        requeued = []
        for uid in match.users:
            user = self.users[uid]
            told, back = outcomes[uid]
            user.match_id = None  # last_match_id stays the last call: late skip/end name it
            if back:
                self._enqueue(user, match.tickets[uid])
                requeued.append(uid)
            else:
                user.status = UserStatus.IDLE
            if told:
                position = self._position(uid, now)[0] if back else None
                message = {
                    "type": "match_cancelled",
                    "match_id": match.match_id,
                    "reason": told,
                    "requeued": back,
                    "position": position,
                }
                effects.append(self._send(uid, message))
        self._pair_requeued(requeued, now, effects)

    def _health_check_failed(self, match_id: str, now: int, effects: Effects) -> None:
        match = self.matches.get(match_id)
        if match is None or match.phase is not MatchPhase.CHECKING:
            return
        failed = list(match.probing)  # in probe order: deterministic, as the Redis port is
        for uid in failed:  # from its side it was still waiting in the queue
            effects.append(self._send(uid, _QUEUE_TIMED_OUT))
        outcomes = {
            uid: ("", False) if uid in failed else ("partner_unreachable", True)
            for uid in match.users
        }
        self._cancel(match, now, effects, reason="health_check", outcomes=outcomes)
        for uid in failed:
            self._end_session(self.users[uid], effects, close_code=CloseCode.STALE)

    def _ack_timed_out(self, match_id: str, now: int, effects: Effects) -> None:
        match = self.matches.get(match_id)
        if match is None or match.phase is not MatchPhase.PROPOSED:
            return
        outcomes = {uid: ("ack_timeout", uid in match.acked) for uid in match.users}
        self._cancel(match, now, effects, reason="ack_timeout", outcomes=outcomes)

    def _media_check_failed(self, match_id: str, now: int, effects: Effects) -> None:
        match = self.matches.get(match_id)
        if match is None or match.phase is not MatchPhase.CONFIRMED or not match.probing:
            return
        frozen = next(iter(match.probing))
        self._drop_stale(self.users[frozen], now, effects, call_reason="disconnected")

    def _resume_window_over(self, user_id: str, now: int, effects: Effects) -> None:
        user = self.users.get(user_id)
        if user is None or user.presence is not Presence.AWAY:
            return
        self._leave_everything(user, now, effects, call_reason="disconnected")
        self._end_session(user, effects, close_code=None)

    def _drop_stale(self, user: User, now: int, effects: Effects, *, call_reason: str) -> None:
        """An unresponsive connection: out of queue or call, told why, closed with 4408."""
        if user.status is UserStatus.QUEUED or (
            user.status is UserStatus.PROPOSED
            and user.match_id
            and self.matches[user.match_id].phase is MatchPhase.CHECKING
        ):
            effects.append(self._send(user.user_id, _QUEUE_TIMED_OUT))
        self._leave_everything(user, now, effects, call_reason=call_reason)
        self._end_session(user, effects, close_code=CloseCode.STALE)

    def _leave_everything(
        self, user: User, now: int, effects: Effects, *, call_reason: str
    ) -> None:
        """Take a departing user out of its queue place, proposal or call."""
        if user.status is UserStatus.QUEUED:
            self._dequeue(user)
        elif user.match_id is not None:
            match = self.matches[user.match_id]
            partner = match.partner_of(user.user_id)
            if match.phase is MatchPhase.CONFIRMED:
                self._end_call(match, now, call_reason, user.user_id, effects)
                self._requeue_partner(partner, match, call_reason, now, effects)
                self._pair_requeued((partner,), now, effects)
            else:
                outcomes = {partner: ("partner_unreachable", True), user.user_id: ("", False)}
                self._cancel(match, now, effects, reason=call_reason, outcomes=outcomes)
        self.deadlines.cancel(DeadlineKind.INTEREST, user.user_id)

    def _end_session(self, user: User, effects: Effects, *, close_code: int | None) -> None:
        self.deadlines.cancel(DeadlineKind.RESUME, user.user_id)
        del self.users[user.user_id]
        effects.append(fx.EndSession(user.user_id, user.node_id, user.session_id, close_code))

    def _end_call(
        self, match: Match, now: int, reason: str, by: str | None, effects: Effects
    ) -> None:
        del self.matches[match.match_id]
        self.deadlines.cancel(DeadlineKind.MEDIA_CHECK, match.match_id)
        match.phase = MatchPhase.ENDED
        match.ended_at = now
        match.end_reason = reason
        match.ended_by = by
        a, b = match.users
        self.compat.met(a, b, now)
        good = (
            match.confirmed_at is not None and now - match.confirmed_at >= self.rules.good_call_ms
        )
        for uid in match.users:
            user = self.users[uid]
            user.match_id = None
            user.last_match_id = match.match_id
            user.last_partner_id = match.partner_of(uid)
            user.status = UserStatus.IDLE
            record = self.skips.get(uid)
            if good and record is not None and (record.skips or record.level):
                record.forgive()
                self._changed_skips[uid] = record
        effects.append(fx.CallEnded(match))

    def _requeue_partner(
        self, partner_id: str, match: Match, reason: str, now: int, effects: Effects
    ) -> None:
        """Tell the one left behind, and put it back in the queue unless it is cooling down."""
        partner = self.users[partner_id]
        cooling = self._cooling_ms(partner_id, now)
        if not cooling:
            self._enqueue(partner, self._new_ticket(now))
        message: dict[str, Any] = {
            "type": "partner_left",
            "match_id": match.match_id,
            "reason": reason,
            "requeued": not cooling,
            "position": self._position(partner_id, now)[0] if not cooling else None,
        }
        effects.append(self._send(partner_id, message))

    def _withdraw(self, user: User, now: int, effects: Effects) -> None:
        """A late `end`: leave whatever queue place or proposal followed the ended call."""
        if user.status is UserStatus.QUEUED:
            self._dequeue(user)
        elif user.status is UserStatus.PROPOSED and user.match_id:
            match = self.matches[user.match_id]
            outcomes = {
                match.partner_of(user.user_id): ("partner_left", True),
                user.user_id: (_leaver_reason(match), False),
            }
            self._cancel(match, now, effects, reason="left", outcomes=outcomes)

    # ------------------------------------------------------------------ helpers

    def _user(self, user_id: str) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise InvalidState("no session for this user")
        return user

    def _call_for(self, user: User, match_id: str, command: str) -> Match | None:
        """The confirmed call `match_id` names, or None when it is the user's last, ended one."""
        if user.match_id == match_id:
            match = self.matches[match_id]
            if match.phase is not MatchPhase.CONFIRMED:
                raise InvalidState.expected(command, "in_call", "proposed")
            return match
        if match_id == user.last_match_id:
            return None
        if user.status is not UserStatus.IN_CALL:
            raise InvalidState.expected(command, "in_call", self._status_name(user))
        raise NotFound(f"{match_id} is not your current match")

    def _current_call(self, user: User, match_id: str, what: str) -> Match:
        match = self._call_for(user, match_id, what)
        if match is None:
            raise NotFound(f"{match_id} is over")
        return match

    def _enqueue(self, user: User, ticket: int) -> None:
        user.status = UserStatus.QUEUED
        user.ticket = ticket
        self.queue.add(user.user_id, ticket)

    def _new_ticket(self, now: int) -> int:
        """A place at the back of the queue: after everyone queued so far, even this ms."""
        self._last_ticket = max(now * TICKS_PER_MS, self._last_ticket + 1)
        return self._last_ticket

    def _dequeue(self, user: User, status: UserStatus = UserStatus.IDLE) -> None:
        self.queue.discard(user.user_id)
        user.status = status
        self.deadlines.cancel(DeadlineKind.INTEREST, user.user_id)

    def _position(self, user_id: str, now: int) -> tuple[int, int | None]:
        position = self.queue.position(user_id)
        return position, self.rate.eta_ms(position, now)

    def _queue_reply(self, user: User, now: int, *, requeued: bool | None = None) -> Reply:
        reply: Reply = {}
        if requeued is not None:
            reply["requeued"] = requeued
        if user.status is UserStatus.QUEUED:
            reply["position"], reply["eta_ms"] = self._position(user.user_id, now)
        else:
            reply["position"], reply["eta_ms"] = None, None
        return reply

    def _cooling_ms(self, user_id: str, now: int) -> int:
        record = self.skips.get(user_id)
        return record.remaining_ms(now) if record else 0

    def _refuse_if_cooling(self, user_id: str, now: int) -> None:
        if cooling := self._cooling_ms(user_id, now):
            raise Cooldown(
                f"skipping too often; try again in {cooling // 1000 + 1} s", retry_after_ms=cooling
            )

    def _refuse_if_banned(self, user_id: str, now: int) -> None:
        if not self.is_banned(user_id, now):
            return
        until = self.bans[user_id]
        if until is None:
            raise Banned("you are banned")
        left = until - now
        raise Banned(f"you are banned; try again in {left // 1000 + 1} s", retry_after_ms=left)

    def _penalties_changed(self, effects: Effects) -> None:
        """End a transition: a SkipPenaltyChanged for each skip record it changed."""
        for user_id, r in self._changed_skips.items():
            effects.append(
                fx.SkipPenaltyChanged(user_id, tuple(r.skips), r.level, r.cooldown_until)
            )
        self._changed_skips.clear()

    def _send(self, user_id: str, message: dict[str, Any]) -> fx.Send:
        user = self.users[user_id]
        user.order += 1
        return fx.Send(user_id, user.node_id, message, user.order)

    def _set_deadline(self, kind: DeadlineKind, key: str, at: int, effects: Effects) -> None:
        self.deadlines.set(kind, key, at)
        effects.append(fx.WakeAt(at))

    def _status_name(self, user: User) -> str:
        match = self.matches.get(user.match_id) if user.match_id else None
        if match is not None and match.phase is MatchPhase.CHECKING:
            return "queued"  # reserved while health-checked; not yet told of the match
        return user.status.value


def _leaver_reason(match: Match) -> str:
    """A user leaving a proposal it saw as `matched` is told it is cancelled ("left"), so that
    every `matched` is resolved; one still being health-checked never heard of it."""
    return "left" if match.phase is MatchPhase.PROPOSED else ""


_QUEUE_TIMED_OUT = {"type": "queue_cancelled", "reason": "connection_timeout"}
_QUEUE_BANNED = {"type": "queue_cancelled", "reason": "banned"}


def _partner_info(partner: User, match: Match) -> dict[str, Any]:
    return {
        "user_id": partner.user_id,
        "display_name": partner.display_name,
        "common_interests": list(match.common_interests),
    }


def _partner_resumed(match: Match) -> dict[str, Any]:
    return {"type": "partner_resumed", "match_id": match.match_id}
