"""Which deliveries were handled already: webhooks are retried and may arrive twice."""

from __future__ import annotations

from collections import OrderedDict

SEEN_EVENTS = 10_000  # event ids remembered for deduplication


class SeenEvents:
    """The ids of the most recent events, oldest forgotten first."""

    def __init__(self, size: int = SEEN_EVENTS) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def first_time(self, event_id: str) -> bool:
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True
