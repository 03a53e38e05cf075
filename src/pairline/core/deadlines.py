"""Deadlines kept in the state itself, so that whoever holds the state can finish them."""

from __future__ import annotations

import heapq
import itertools

from pairline.core.model import DeadlineKind

DeadlineKey = tuple[DeadlineKind, str]


class DeadlineBook:
    """At most one deadline per (kind, key); set, cancel and pop the due ones in time order.

    Cancelled or replaced entries stay in the heap and are skipped when they surface, so every
    operation is O(log n).
    """

    __slots__ = ("_counter", "_current", "_heap")

    def __init__(self) -> None:
        self._current: dict[DeadlineKey, int] = {}
        self._heap: list[tuple[int, int, DeadlineKind, str]] = []
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._current)

    def set(self, kind: DeadlineKind, key: str, at: int) -> None:
        self._current[(kind, key)] = at
        heapq.heappush(self._heap, (at, next(self._counter), kind, key))

    def cancel(self, kind: DeadlineKind, key: str) -> None:
        self._current.pop((kind, key), None)

    def get(self, kind: DeadlineKind, key: str) -> int | None:
        return self._current.get((kind, key))

    def next_at(self) -> int | None:
        """When the earliest live deadline falls due, or None."""
        self._drop_dead_head()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: int) -> tuple[DeadlineKind, str] | None:
        """Remove and return the earliest deadline due at `now`, or None."""
        self._drop_dead_head()
        if not self._heap or self._heap[0][0] > now:
            return None
        _, _, kind, key = heapq.heappop(self._heap)
        del self._current[(kind, key)]
        return kind, key

    def _drop_dead_head(self) -> None:
        heap = self._heap
        while heap:
            at, _, kind, key = heap[0]
            if self._current.get((kind, key)) == at:
                return
            heapq.heappop(heap)
