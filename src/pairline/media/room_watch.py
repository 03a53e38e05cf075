"""LiveKit rooms kept true to their matches: nobody sits alone in a room, no room outlives its call.

- After every change of a room's participants (LiveKit's `participant_joined`/`participant_left`
  webhooks, which may reach any node), the room is looked at again `alone_ms` later. If it then
  holds one user (or none) and nobody came or went since, on any node, the call ends and both
  users are re-queued (`media_absent`). The last change is kept in the store, so a node whose
  timer is older than a change another node heard of does nothing: that node's own timer decides.
- `room_finished` (LiveKit closed the room, empty) ends the call if it is still open.
- Every `sweep_ms`, one node of the cluster deletes the pairline rooms whose match is over (a
  deletion that failed after its retries, a room made for a proposal that then failed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from pairline import metrics
from pairline.engine.clock import now_ms
from pairline.errors import StoreUnavailable
from pairline.media.livekit import LiveKitMedia, MediaUnavailable
from pairline.store.base import Store

log = structlog.get_logger("pairline.livekit")

# Ends the call of a room that held only these users (the engine's `media_absent`).
EndAbsent = Callable[[str, list[str]], Awaitable[None]]
# A timer may fire a little early against the wall clock the change was noted with.
CLOCK_SLACK_MS = 50


class RoomWatch:
    def __init__(
        self,
        livekit: LiveKitMedia,
        store: Store,
        end_absent: EndAbsent,
        *,
        alone_ms: int,
        sweep_ms: int,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.livekit = livekit
        self.store = store
        self.end_absent = end_absent
        self.alone_ms = alone_ms
        self.sweep_ms = sweep_ms
        self.clock = clock
        self.alone_count = 0  # calls ended because one user sat alone in the room
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def room_changed(self, match_id: str) -> None:
        """Someone joined or left the match's room: look again in `alone_ms`."""
        await self.store.note_media_change(match_id, self.clock())
        old = self._timers.pop(match_id, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[match_id] = loop.call_later(self.alone_ms / 1000, self._due, match_id)

    async def room_finished(self, match_id: str) -> None:
        """LiveKit closed the room (it stayed empty): the call, if still open, is over."""
        await self.end_absent(match_id, [])

    def _due(self, match_id: str) -> None:
        self._timers.pop(match_id, None)
        task = asyncio.create_task(self.check(match_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def check(self, match_id: str) -> None:
        """Look at the room now: if one user (or none) has been in it for `alone_ms` since its
        last change, the call ends."""
        try:
            changed_at = await self.store.media_changed_at(match_id)
            if changed_at is None or self.clock() - changed_at < self.alone_ms - CLOCK_SLACK_MS:
                return  # the call is over, or the room changed since (that change's timer decides)
            present = await self.livekit.participants(match_id)
            if len(present) >= 2:
                return
            if present:
                self.alone_count += 1
                metrics.ALONE_IN_ROOM.inc()
            log.info("alone_in_room", match_id=match_id, present=present, alone_ms=self.alone_ms)
            await self.end_absent(match_id, present)
        except (MediaUnavailable, StoreUnavailable) as exc:
            # Nothing decided: the heartbeats and LiveKit's own room timeouts still hold.
            log.warning("alone_check_failed", match_id=match_id, error=str(exc))

    # ------------------------------------------------------------------ the sweep

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def sweep_once(self) -> int:
        """Delete the rooms whose match is over, if this node holds this period's duty."""
        if not await self.store.claim_duty("livekit_sweep", self.sweep_ms, self.clock()):
            return 0
        deleted = await self.livekit.sweep(self.store.live_matches)
        if deleted:
            log.info("livekit_rooms_swept", deleted=deleted)
        return deleted

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_ms / 1000)
            try:
                await self.sweep_once()
            except StoreUnavailable as exc:
                log.warning("livekit_sweep_failed", error=str(exc))

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = [*self._tasks, *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
