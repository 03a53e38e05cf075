"""The ordered record of everything a client received, and the ways to wait on it.

`wait_for` semantics: the log has one *cursor*. `wait_for` scans the events at and after
the cursor (the ones already received first, then new ones as they arrive), returns the
first that matches, and moves the cursor just past it. Events it skipped over are thereby
consumed too. So a sequence of `wait_for` calls reads as a sequence of expectations in
arrival order ("matched, then match_confirmed, then chat"), and it does not matter whether
an event arrived before or after the call that asks for it. Concurrent `wait_for` calls on
one log share the cursor; tests should not rely on their interleaving.

`iterate` is independent of the cursor: each iterator walks the whole log from the start.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable

from .errors import ConnectionLost
from .events import Error, Event, Reply, describe

Predicate = Callable[[Event], bool]


def _type_set(types: str | Iterable[str]) -> frozenset[str]:
    return frozenset((types,) if isinstance(types, str) else types)


class EventLog:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.cursor = 0
        self._changed = asyncio.Event()
        self._finished = False
        self._end: ConnectionLost | None = None

    def append(self, event: Event) -> None:
        self.events.append(event)
        self._wake()

    def finish(self, end: ConnectionLost | None) -> None:
        """No more events will come; waiters then raise `end` (or a generic ConnectionLost)."""
        if not self._finished:
            self._finished = True
            self._end = end
            self._wake()

    @property
    def finished(self) -> bool:
        return self._finished

    def _wake(self) -> None:
        # One Event per "generation": set it to wake the current waiters, then start afresh.
        self._changed.set()
        self._changed = asyncio.Event()

    def _ended(self) -> ConnectionLost:
        return self._end if self._end is not None else ConnectionLost(None, "client closed")

    async def wait_for(
        self,
        types: str | Iterable[str],
        timeout_s: float | None = 10.0,
        where: Predicate | None = None,
    ) -> Event:
        """The first not-yet-consumed event of one of `types` (and satisfying `where`)."""
        wanted = _type_set(types)
        scanned = self.cursor
        deadline = None if timeout_s is None else asyncio.get_running_loop().time() + timeout_s
        while True:
            # Another waiter may have moved the cursor past what this one scanned.
            scanned = max(scanned, self.cursor)
            while scanned < len(self.events):
                event = self.events[scanned]
                scanned += 1
                if event.type in wanted and (where is None or where(event)):
                    self.cursor = scanned
                    return event
            if self._finished:
                raise self._ended()
            changed = self._changed
            remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(self._timeout_message(wanted, timeout_s))
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                raise TimeoutError(self._timeout_message(wanted, timeout_s)) from None

    def _timeout_message(self, wanted: frozenset[str], timeout_s: float | None) -> str:
        recent = "\n  ".join(describe(e) for e in self.events[-8:]) or "(none)"
        return (
            f"no {'/'.join(sorted(wanted))} event within {timeout_s} s "
            f"(cursor {self.cursor} of {len(self.events)}); last events:\n  {recent}"
        )

    async def iterate(self) -> AsyncIterator[Event]:
        """Every event but answers to commands, from the first one, waiting for more.

        Ends when the log is finished: quietly after a clean close, else by raising the
        ConnectionLost that ended it.
        """
        index = 0
        while True:
            while index < len(self.events):
                event = self.events[index]
                index += 1
                if not is_command_answer(event):
                    yield event
            if self._finished:
                if self._end is not None:
                    raise self._end
                return
            await self._changed.wait()


def is_command_answer(event: Event) -> bool:
    """A `reply`, or an `error` that answers a command (has `re`)."""
    return isinstance(event, Reply) or (isinstance(event, Error) and event.re is not None)
