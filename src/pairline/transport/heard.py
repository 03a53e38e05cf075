"""Who was heard from, told to the store together.

Every pong (and every probe answer) must reach the store: it is what keeps a user from being
swept as stale, and what lets a health-checked match go ahead. One store call each made the
heartbeats of 10,000 idle users some 700 Redis scripts a second, most of each one's cost the
script's own overhead. Here the users heard from in one pass of the event loop, and any that
come while a call is on its way, go in one call; so the calls per second fall as load rises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog

from pairline.errors import PairlineError

log = structlog.get_logger("pairline.heard")


class HeardBatch:
    """Collects user ids; one flush at a time carries all that are waiting."""

    def __init__(
        self,
        tell: Callable[[Sequence[str]], Awaitable[None]],
        on_failed: Callable[[Sequence[str]], None],
    ) -> None:
        self._tell = tell
        self._on_failed = on_failed  # these users were not told: tell them again later
        self._waiting: dict[str, None] = {}  # an ordered set
        self._task: asyncio.Task[None] | None = None

    def add(self, user_id: str) -> None:
        self._waiting[user_id] = None
        if self._task is None:
            # Started as a task, it first runs on the loop's next pass: whatever else this
            # pass hears joins the same call.
            self._task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._waiting:
                users, self._waiting = list(self._waiting), {}
                try:
                    await self._tell(users)
                except PairlineError as exc:  # the store is away: expected, one line
                    log.warning("heard_failed", users=len(users), error=str(exc))
                    self._on_failed(users)
                except Exception:
                    log.exception("heard_failed", users=len(users))
                    self._on_failed(users)
        finally:
            self._task = None

    async def close(self) -> None:
        """Wait for what is on its way (at shutdown)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
