"""Commands in flight: the futures waiting for their `reply`/`error`, keyed by id."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass
class Pending:
    """A command awaiting its answer; `gen` is the connection it was last sent on."""

    command: str
    message: dict[str, Any]
    future: asyncio.Future[dict[str, Any]]
    gen: int = -1

    @property
    def id(self) -> str:
        return str(self.message["id"])


class PendingCommands:
    def __init__(self) -> None:
        # A deque per id: the same id may be sent again before the first answer (an
        # idempotency test); answers then go to the waiters oldest first.
        self._by_id: dict[str, deque[Pending]] = {}

    def add(self, command: str, message: dict[str, Any]) -> Pending:
        pending = Pending(command, message, asyncio.get_running_loop().create_future())
        self._by_id.setdefault(pending.id, deque()).append(pending)
        return pending

    def forget(self, pending: Pending) -> None:
        queue = self._by_id.get(pending.id)
        if queue is not None and pending in queue:
            queue.remove(pending)
            if not queue:
                del self._by_id[pending.id]

    def take(self, command_id: str) -> Pending | None:
        """The oldest command waiting for an answer to `command_id`, now answered."""
        queue = self._by_id.get(command_id)
        if not queue:
            return None  # a repeated answer, or one to a command that timed out
        pending = queue.popleft()
        if not queue:
            del self._by_id[command_id]
        return pending

    def not_sent_on(self, gen: int) -> list[Pending]:
        return [p for q in self._by_id.values() for p in q if p.gen != gen and not p.future.done()]

    def fail_all(self, exc: BaseException) -> None:
        for queue in self._by_id.values():
            for pending in queue:
                if not pending.future.done():
                    pending.future.set_exception(exc)
        self._by_id.clear()
