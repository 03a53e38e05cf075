"""A session: the numbered message stream of one user, which outlives its connections.

Each server message gets the next `seq` and stays buffered until the client acks it, so a client
that reconnects with `resume` gets every message it missed, in order, with the same `seq`s.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

from pairline import metrics
from pairline.core.protocol import encode

REPLY_CACHE_SIZE = 256
# Messages that start or end a measured latency (see `Session._mark`).
_MARKED = frozenset(
    {
        "matched",
        "match_confirmed",
        "queue_cancelled",
        "partner_left",
        "match_cancelled",
        "reply",
        "error",
    }
)


class Connection(Protocol):
    """What a transport adapter offers a session: write one message, or close."""

    def send(self, data: bytes) -> None: ...

    def close(self, code: int, reason: str = "") -> None: ...


class Session:
    __slots__ = (
        "_due",
        "_held",
        "_matched",
        "_matched_at",
        "_outbox",
        "_queued_at",
        "_replay_limit",
        "_replies",
        "conn",
        "display_name",
        "events_lost",
        "gap_handle",
        "heard_told_at",
        "order",
        "ping_handle",
        "ping_nonce",
        "probed",
        "seq",
        "session_id",
        "user_id",
    )

    def __init__(self, session_id: str, user_id: str, display_name: str, replay_limit: int) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.display_name = display_name
        self.seq = 0
        self.conn: Connection | None = None
        self.ping_handle: Any = None
        self.ping_nonce = 0
        self._replay_limit = replay_limit
        # Lists, not deques: a deque takes ~700 bytes even when empty, and these stay short
        # (acked messages leave the outbox; `_due` is used only behind a gap).
        self._outbox: list[tuple[int, bytes]] = []  # consecutive seqs
        self._matched: dict[int, tuple[str, float]] = {}  # seq of an unacked `matched` → its
        # match id and when it was pushed
        self._queued_at: float | None = None  # for the metrics: when the user's wait began
        self._matched_at: float | None = None  # … and when its last `matched` went out
        self._replies: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.order = 0  # the last of the store's events for this user that was pushed
        self._held: dict[int, dict[str, Any]] = {}  # events that arrived ahead of a gap
        self._due: list[tuple[int, dict[str, Any]]] = []  # replies waiting for events
        self.gap_handle: Any = None
        self.heard_told_at = float("-inf")  # when the store last heard of this user (loop time)
        self.probed = False  # a health check waits for this user's next message
        # Some of the user's events never reached this stream: it cannot be resumed as if
        # whole, so the next hello gets a fresh session and rebuilds from the welcome's state.
        self.events_lost = False

    def deliver(self, order: int, message: dict[str, Any]) -> bool:
        """Push the store's `order`-th event for this user in its place; True while events
        wait behind a gap (one still on its way from another node)."""
        if order <= self.order:
            return self.waiting()  # already pushed (or from before this session)
        if order > self.order + 1:
            self._held[order] = message
            return True
        self.order = order
        self.push(message)
        self._push_due()
        while self.order + 1 in self._held:
            self.order += 1
            self.push(self._held.pop(self.order))
            self._push_due()
        return self.waiting()

    def reply(self, order: int, message: dict[str, Any]) -> bool:
        """Push a command's reply once every event up to `order` (the user's event order when
        the command ran) is out: a reply must not overtake an event still on its way from
        another node. True while something waits."""
        if order <= self.order:
            self.push(message)
        else:
            self._due.append((order, message))
        return self.waiting()

    def waiting(self) -> bool:
        """Whether events or replies wait for an event that has not arrived."""
        return bool(self._held or self._due)

    def _push_due(self) -> None:
        due = self._due
        while due and due[0][0] <= self.order:
            self.push(due.pop(0)[1])

    def abandon_gap(self) -> None:
        """Give up on a missing event (lost with a dead node). Events that waited behind it are
        dropped too, never delivered out of order: the caller makes the client resync from a
        snapshot, which already reflects all of them. Replies go out: the client waits for them."""
        orders = [*self._held, *(order for order, _ in self._due), self.order]
        self.order = max(orders)
        self.events_lost = True
        self._held.clear()
        self._push_due()

    def push(self, message: dict[str, Any]) -> int:
        """Number, buffer and (if connected) send one message; return its seq."""
        self.seq += 1
        seq = self.seq
        # `seq` is spliced in front rather than added to the dict: messages may be shared.
        data = b'{"seq":%d,' % seq + encode(message)[1:]
        self._outbox.append((seq, data))
        if len(self._outbox) > self._replay_limit:
            del self._outbox[0]  # a client this far behind gets a fresh session instead
        kind = message["type"]
        if kind in _MARKED:
            self._mark(kind, message, seq)
        if self.conn is not None:
            self.conn.send(data)
        return seq

    def _mark(self, kind: str, message: dict[str, Any], seq: int) -> None:
        """Note the moments the latency metrics are measured between."""
        now = time.perf_counter()
        if kind == "matched":
            self._matched[seq] = (message["match_id"], now)
            if self._queued_at is not None:
                metrics.WAIT_TO_MATCHED.observe(now - self._queued_at)
            self._queued_at, self._matched_at = None, now
        elif kind == "match_confirmed":
            if self._matched_at is not None:
                metrics.MATCHED_TO_CONFIRMED.observe(now - self._matched_at)
            self._matched_at = None
        elif kind == "queue_cancelled":
            self._queued_at = None
        elif kind == "error":
            metrics.ERRORS.labels(message["code"]).inc()
        elif message.get("requeued") or (kind == "reply" and message.get("position")):
            self._queued_at = now  # joined, or back in the queue after a call or proposal

    def ack(self, upto: int) -> list[str]:
        """Drop every buffered message up to `upto`; return the matches whose `matched` it acks."""
        outbox = self._outbox
        if outbox and outbox[0][0] <= upto:
            del outbox[: upto - outbox[0][0] + 1]
        if not self._matched:
            return []
        now = time.perf_counter()
        acked = []
        for seq, (match_id, pushed_at) in self._matched.items():
            if seq <= upto:
                acked.append(match_id)
                metrics.ACK_ROUND_TRIP.observe(now - pushed_at)
        if acked:
            self._matched = {s: m for s, m in self._matched.items() if s > upto}
        return acked

    def replay_after(self, last_seq: int) -> list[bytes] | None:
        """The buffered messages after `last_seq`, or None when some of them are gone."""
        outbox = self._outbox
        oldest = outbox[0][0] if outbox else self.seq + 1
        if last_seq > self.seq or last_seq + 1 < oldest:
            return None
        return [data for seq, data in outbox if seq > last_seq]

    def cached_reply(self, command_id: str) -> dict[str, Any] | None:
        return self._replies.get(command_id)

    def remember_reply(self, command_id: str, payload: dict[str, Any]) -> None:
        self._replies[command_id] = payload
        if len(self._replies) > REPLY_CACHE_SIZE:
            self._replies.popitem(last=False)

    def next_nonce(self) -> int:
        self.ping_nonce += 1
        return self.ping_nonce

    def pending(self) -> int:
        return len(self._outbox)
