"""The engine: runs each command as one store transition and carries out its effects.

Three clocks drive what no command triggers: the deadline timer (sleeps until the store's next
deadline, woken early when an earlier one is set), the stale sweep, and the queue-position push
(at most once a second, only when the queue changed). None of them polls for state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import structlog

from pairline import metrics
from pairline.core import effects as fx
from pairline.core.model import Match
from pairline.core.protocol import (
    Block,
    Chat,
    CloseCode,
    Command,
    End,
    Join,
    Leave,
    Report,
    Signal,
    Skip,
    normalise_interests,
)
from pairline.core.rules import Rules
from pairline.engine.clock import now_ms
from pairline.engine.delivery import Delivery
from pairline.engine.recording import Journal, records_of
from pairline.errors import Busy, PairlineError
from pairline.media.base import Media
from pairline.records.events import BlockRemoved, Record, ReportFiled, UserKind, UserSeen
from pairline.store.base import Attached, Effects, Outcome, Reply, Store, order_before

log = structlog.get_logger("pairline.engine")

QUEUE_PUSH_INTERVAL_S = 1.0


class Engine:
    """Commands in, effects out; the only writer of queue and match state on this node."""

    def __init__(
        self,
        store: Store,
        delivery: Delivery,
        media: Media,
        rules: Rules,
        *,
        node_id: str,
        sweep_interval_ms: int,
        deadline_poll_s: float | None = None,
        clock: Callable[[], int] = now_ms,
        journal: Journal | None = None,
        on_report: Callable[[ReportFiled], None] | None = None,
    ) -> None:
        self.store = store
        # Records (calls, blocks, reports, skip penalties) are made durable here before the
        # users concerned are told; None: nothing is recorded (tests of the engine alone).
        self.journal = journal
        self.on_report = on_report
        self.delivery = delivery
        self.media = media
        self.rules = rules
        self.node_id = node_id
        self.clock = clock
        self._sweep_interval_s = sweep_interval_ms / 1000
        # With shared state, other nodes set deadlines too (and may die before they fire):
        # look at the store at least this often. None: every deadline is set here.
        self._deadline_poll_s = deadline_poll_s
        self._wake = asyncio.Event()
        self._next_wake: int | None = None
        self._queue_changed = False
        self._told: dict[str, tuple[int, int | None]] = {}  # last position pushed per user
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run_deadlines(), name="pairline-deadlines"),
            asyncio.create_task(self._run_sweeps(), name="pairline-sweeps"),
            asyncio.create_task(self._run_queue_pushes(), name="pairline-queue-pushes"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # ------------------------------------------------------------------ sessions

    async def attach(
        self,
        user_id: str,
        display_name: str,
        node_id: str,
        new_session_id: str,
        kind: UserKind = "guest",
    ) -> Attached:
        now = self.clock()
        attached = await self.store.attach(user_id, display_name, node_id, new_session_id, now)
        seen = [UserSeen(user_id, display_name, kind, now)] if attached.fresh else []
        await self._prepare_media(attached.effects)
        await self._record(attached.effects, seen)
        self.apply(attached.effects)
        return attached

    async def renew_session(self, user_id: str, session_id: str) -> None:
        await self.store.renew_session(user_id, session_id)

    async def detach(self, user_id: str, session_id: str) -> None:
        await self._carry_out(await self.store.detach(user_id, session_id, self.clock()))

    async def heard(self, user_ids: Sequence[str]) -> None:
        """These users sent something (see `transport.heard`)."""
        await self._carry_out(await self.store.heard_many(user_ids, self.clock()))

    async def node_lost(self, node_id: str) -> None:
        """Another node died: its users' connections are gone, their resume windows start."""
        await self._carry_out(await self.store.node_lost(node_id, self.clock()))

    async def snapshot(self, user_id: str) -> dict[str, Any]:
        view = await self.store.snapshot(user_id, self.clock())
        state = view.state
        if state["status"] == "in_call" and view.match_users is not None:
            match_id = state["match"]["match_id"]
            state["match"]["media"] = self.media.describe(match_id, view.match_users, user_id)
        return state

    # ------------------------------------------------------------------ client messages

    async def command(
        self, user_id: str, command: Command, respond: Callable[[Reply, int], None]
    ) -> None:
        """Run one command: `respond` gets the reply, and the user's event order it must not
        overtake, before any effect goes out.

        Raises the command's `ProtocolError` (having changed nothing) when it is refused.
        """
        received = time.perf_counter()
        now = self.clock()
        outcome = await self._transition(user_id, command, now)
        extra = (
            [self._report_record(user_id, command, outcome, now)]
            if isinstance(command, Report)
            else []
        )
        await self._prepare_media(outcome.effects)
        await self._record(outcome.effects, extra)  # the user's reply says the call ended
        self._queue_changed = True
        respond(outcome.reply, order_before(outcome.effects, user_id, outcome.order))
        self._note_position(user_id, outcome.reply)
        self.apply(outcome.effects)
        if isinstance(command, Skip) and outcome.effects:
            # The partner's partner_left has just been handed to its connection (or its node).
            metrics.SKIP_TO_PARTNER_NOTIFIED.observe(time.perf_counter() - received)

    @property
    def overloaded(self) -> bool:
        """The store has more waiting than it serves in time (see `Store.overloaded`)."""
        return self.store.overloaded()

    def admit(self, message: object) -> None:
        """Raise `Busy` for a `join` while the store is overloaded: a burst past what the store
        serves at once is refused now, changing nothing, and comes back at the turn the store
        gives it (spread over the time it needs), rather than failing after the pool timeout.
        Work under way is never refused. The gateway asks before anything of the message
        reaches the store (its heartbeat too)."""
        if isinstance(message, Join) and self.overloaded:
            metrics.RATE_LIMITED.labels("store").inc()
            raise Busy(
                "the service is busy; join again in a moment",
                retry_after_ms=self.store.shed_turn_ms(),
            )

    async def _transition(self, user_id: str, command: Command, now: int) -> Outcome:
        store = self.store
        if isinstance(command, Join):
            interests = normalise_interests(command.interests)
            return await store.join(user_id, interests, command.lang, now)
        if isinstance(command, Leave):
            return await store.leave(user_id, now)
        if isinstance(command, Skip):
            return await store.skip(user_id, command.match_id, now)
        if isinstance(command, End):
            return await store.end(user_id, command.match_id, now)
        if isinstance(command, Block):
            return await store.end(user_id, command.match_id, now, block=True)
        return await store.end(user_id, command.match_id, now, block=True)

    async def ack_matched(self, user_id: str, match_id: str) -> None:
        await self._carry_out(await self.store.ack(user_id, match_id, self.clock()))

    async def relay(self, user_id: str, message: Chat | Signal) -> None:
        if isinstance(message, Chat):
            payload: dict[str, Any] = {"type": "chat", "text": message.text}
        else:
            payload = {"type": "signal", "data": message.data}
        await self._carry_out(
            await self.store.relay(user_id, message.match_id, payload, self.clock())
        )

    async def media_lost(self, user_id: str, match_id: str) -> None:
        await self._carry_out(await self.store.media_lost(user_id, match_id, self.clock()))

    async def media_gone(self, user_id: str, match_id: str) -> None:
        """The media server saw the user's media leave the call (a LiveKit webhook)."""
        await self._carry_out(await self.store.media_gone(user_id, match_id, self.clock()))

    async def media_absent(self, match_id: str, present: list[str]) -> None:
        """The call's media room held only `present` for too long: the call ends."""
        await self._carry_out(await self.store.media_absent(match_id, present, self.clock()))

    # ------------------------------------------------------------------ moderation

    async def ban(self, user_id: str, until: int | None) -> None:
        """Ban the user now (the caller has recorded the ban): out of queue or call, closed."""
        await self._carry_out(await self.store.ban(user_id, until, self.clock()))
        self._queue_changed = True

    async def unban(self, user_id: str) -> None:
        await self.store.unban(user_id, self.clock())

    async def unblock(self, blocker: str, blocked: str) -> None:
        """Lift a block: recorded first, so that a restart cannot bring it back."""
        await self._record([], [BlockRemoved(blocker, blocked, self.clock())])
        await self.store.unblock(blocker, blocked)

    # ------------------------------------------------------------------ effects

    async def _carry_out(self, effects: Effects) -> None:
        """Make the media of confirmed calls and record what must be recorded, then tell
        everyone: nobody hears of a call that has no room yet or that a crash could make the
        records forget."""
        await self._prepare_media(effects)
        await self._record(effects)
        self.apply(effects)

    async def _prepare_media(self, effects: Effects) -> None:
        for effect in effects:
            if isinstance(effect, fx.Confirmed):
                match = effect.match
                try:
                    await self.media.prepare(match.match_id, match.users)
                except Exception:
                    # The users are told anyway: a LiveKit server makes the room when the first
                    # of them joins, and a failed media link comes back as `media_lost`.
                    log.exception("media_prepare_failed", **match_fields(match))

    async def _record(self, effects: Effects, extra: Sequence[Record] = ()) -> None:
        if self.journal is None:
            return
        records = [*records_of(effects, self.clock(), self.media.room_of), *extra]
        if records:
            await self.journal.append(records)

    def apply(self, effects: Effects) -> None:
        """Carry out a transition's effects, in order."""
        for effect in effects:
            if isinstance(effect, fx.Send):
                self._send(effect)
            elif isinstance(effect, fx.Probe):
                self.delivery.probe(effect.node_id, effect.user_id)
            elif isinstance(effect, fx.EndSession):
                self._end_session(effect)
            elif isinstance(effect, fx.Confirmed):
                self._confirm(effect)
            elif isinstance(effect, fx.CallEnded):
                self._call_ended(effect)
            elif isinstance(effect, fx.MatchFailed):
                metrics.PROPOSALS.labels("cancelled", effect.reason).inc()
                log.warning(
                    "match_failed",
                    **match_fields(effect.match),
                    reason=effect.reason,
                    users=effect.detail,
                    created_at=effect.match.created_at,
                    proposed_at=effect.match.proposed_at,
                )
            elif isinstance(effect, fx.Blocked):
                log.info(
                    "blocked",
                    blocker=effect.blocker,
                    blocked=effect.blocked,
                    match_id=effect.match_id,
                )
            elif isinstance(effect, fx.WakeAt) and (
                self._next_wake is None or effect.at < self._next_wake
            ):
                self._next_wake = effect.at
                self._wake.set()
        if effects:
            self._queue_changed = True

    def _send(self, effect: fx.Send) -> None:
        self.delivery.send(effect.node_id, effect.user_id, effect.message, effect.order)
        self._note_position(effect.user_id, effect.message)
        if effect.message["type"] == "partner_left":
            metrics.PARTNER_LEFT.labels(effect.message["reason"]).inc()

    def _end_session(self, effect: fx.EndSession) -> None:
        self._told.pop(effect.user_id, None)
        if effect.close_code == CloseCode.STALE:
            metrics.STALE_REMOVALS.inc()
        self.delivery.end_session(
            effect.node_id, effect.user_id, effect.session_id, effect.close_code
        )

    def _confirm(self, effect: fx.Confirmed) -> None:
        self._tell_confirmed(effect)
        metrics.CONFIRMED.inc()
        log.info("match_confirmed", **match_fields(effect.match))

    def _tell_confirmed(self, effect: fx.Confirmed) -> None:
        match = effect.match
        for user_id, node_id, order in zip(match.users, effect.nodes, effect.orders, strict=True):
            media = self.media.describe(match.match_id, match.users, user_id)
            message = {"type": "match_confirmed", "match_id": match.match_id, "media": media}
            self.delivery.send(node_id, user_id, message, order)

    def carry_out_handed_off(self, effects: Effects) -> None:
        """What another node's transition had for this node's users (lib.lua's hand-off): only
        their delivery is this node's part; the deciding node records, counts and logs."""
        for effect in effects:
            if isinstance(effect, fx.Send):
                self.delivery.send(effect.node_id, effect.user_id, effect.message, effect.order)
            elif isinstance(effect, fx.Probe):
                self.delivery.probe(effect.node_id, effect.user_id)
            elif isinstance(effect, fx.EndSession):
                self._told.pop(effect.user_id, None)
                self.delivery.end_session(
                    effect.node_id, effect.user_id, effect.session_id, effect.close_code
                )
            elif isinstance(effect, fx.Confirmed):
                # The room exists before this node's user hears of it, as on the deciding
                # node (making it twice is harmless: the second finds it made).
                self._spawn(self._confirm_handed_off(effect))

    async def _confirm_handed_off(self, effect: fx.Confirmed) -> None:
        await self._prepare_media([effect])
        self._tell_confirmed(effect)

    def _call_ended(self, effect: fx.CallEnded) -> None:
        match = effect.match
        duration = (match.ended_at or 0) - (match.confirmed_at or match.created_at)
        log.info(
            "call_ended",
            **match_fields(match),
            reason=match.end_reason,
            ended_by=match.ended_by,
            duration_ms=duration,
        )
        self._spawn(self.media.on_ended(match.match_id))

    def _report_record(
        self, user_id: str, command: Report, outcome: Outcome, now: int
    ) -> ReportFiled:
        reported = next((e.blocked for e in outcome.effects if isinstance(e, fx.Blocked)), "")
        report = ReportFiled(
            # One report per reporter and call: a re-sent command is stored once.
            f"{command.match_id}:{user_id}",
            user_id,
            reported,
            command.match_id,
            command.reason,
            command.details or "",
            now,
        )
        log.warning(
            "report",
            reporter=user_id,
            reported=reported,
            match_id=command.match_id,
            reason=command.reason,
        )
        if self.on_report is not None:
            self.on_report(report)
        return report

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ clocks

    async def _run_deadlines(self) -> None:
        while True:
            self._wake.clear()
            try:
                at = await self.store.next_deadline()
            except PairlineError:
                log.warning("clock_failed", what="next_deadline")
                at = None
            self._next_wake = at
            delay = None if at is None else (at - self.clock()) / 1000
            if self._deadline_poll_s is not None:
                delay = (
                    self._deadline_poll_s if delay is None else min(delay, self._deadline_poll_s)
                )
            if delay is None or delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            await self._guarded(self.store.expire(self.clock()), "expire")

    async def _run_sweeps(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            await self._guarded(self.store.sweep_stale(self.clock()), "sweep")

    async def _guarded(self, transition: Coroutine[Any, Any, Effects], what: str) -> None:
        """A clock's transition: its failure is logged, and the clock keeps running."""
        try:
            await self._carry_out(await transition)
        except Exception:
            log.exception("clock_failed", what=what)
            await asyncio.sleep(0.1)

    async def _run_queue_pushes(self) -> None:
        while True:
            await asyncio.sleep(QUEUE_PUSH_INTERVAL_S)
            if not self._queue_changed:
                continue
            self._queue_changed = False
            try:
                await self._push_queue_positions()
            except Exception:
                log.exception("clock_failed", what="queue_push")

    async def _push_queue_positions(self) -> None:
        statuses = await self.store.queue_status(self.delivery.local_users(), self.clock())
        told = self._told
        for user_id in [u for u in told if u not in statuses]:
            del told[user_id]
        for user_id, (position, eta_ms, as_of) in statuses.items():
            last = told.get(user_id)
            if last is not None and not _worth_telling(last, (position, eta_ms)):
                continue
            told[user_id] = (position, eta_ms)
            message = {"type": "queue", "position": position, "eta_ms": eta_ms}
            self.delivery.push_position(user_id, message, as_of)

    def _note_position(self, user_id: str, message: dict[str, Any]) -> None:
        """The user was just told its position (in a reply or message): no push needed."""
        position = message.get("position")
        if position is not None:
            self._told[user_id] = (position, message.get("eta_ms"))


def _worth_telling(old: tuple[int, int | None], new: tuple[int, int | None]) -> bool:
    """A new position, or an ETA that appeared, vanished or moved by a quarter (≥ 2 s)."""
    if old[0] != new[0]:
        return True
    old_eta, new_eta = old[1], new[1]
    if (old_eta is None) != (new_eta is None):
        return True
    if old_eta is None or new_eta is None:
        return False
    return abs(new_eta - old_eta) > max(2000, old_eta // 4)


def match_fields(match: Match) -> dict[str, str]:
    """What every log line of a match's life carries: the match and both its users."""
    user_a, user_b = match.users
    return {"match_id": match.match_id, "user_a": user_a, "user_b": user_b}
