"""The waiting queue: users ordered by their queue ticket (original queue time), oldest first."""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedList


class WaitQueue:
    """Ordered by queue ticket, oldest first; O(log n) insert, remove and rank."""

    __slots__ = ("_entries", "_keys")

    def __init__(self) -> None:
        self._entries: SortedList = SortedList()
        self._keys: dict[str, tuple[int, str]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._keys

    def add(self, user_id: str, ticket: int) -> None:
        if user_id in self._keys:
            raise ValueError(f"{user_id} is already queued")
        key = (ticket, user_id)
        self._keys[user_id] = key
        self._entries.add(key)

    def remove(self, user_id: str) -> None:
        self._entries.remove(self._keys.pop(user_id))

    def discard(self, user_id: str) -> None:
        if user_id in self._keys:
            self.remove(user_id)

    def position(self, user_id: str) -> int:
        """1-based rank: 1 is next to be paired."""
        return int(self._entries.index(self._keys[user_id])) + 1

    def head(self, limit: int) -> Iterator[str]:
        """The `limit` longest-waiting users, oldest first."""
        for _, user_id in self._entries.islice(0, limit):
            yield user_id

    def __iter__(self) -> Iterator[str]:
        for _, user_id in self._entries:
            yield user_id
