"""The sessions of this node, by user: the local implementation of the engine's `Delivery`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import structlog

from pairline.core.protocol import CloseCode
from pairline.transport.session import Session

log = structlog.get_logger("pairline.registry")

# How long events that overtook an earlier one wait for it before it is given up for lost.
# Only a dead node loses events; a busy one delays them, so this errs long (but well inside
# the resume window).
ORDER_GAP_S = 5.0


class SessionRegistry:
    """Holds each local user's session and keeps its connection pinged.

    As `Delivery` it serves the single-node case: every node id is this node.
    """

    def __init__(self, ping_interval_ms: int) -> None:
        self._sessions: dict[str, Session] = {}
        self._ping_interval_s = ping_interval_ms / 1000
        # Events for users whose hello is under way here: they can arrive (from other nodes)
        # before the session that will take them exists.
        self._expected: dict[str, dict[int, dict[str, Any]]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, user_id: str) -> Session | None:
        return self._sessions.get(user_id)

    def expect(self, user_id: str) -> None:
        """A hello for this user is under way: hold its events until its session exists."""
        self._expected.setdefault(user_id, {})

    def unexpect(self, user_id: str) -> None:
        self._expected.pop(user_id, None)

    def add(self, session: Session) -> None:
        """Hold the session, and give it whatever events arrived for it while it was made."""
        old = self._sessions.get(session.user_id)
        if old is not None and old is not session:
            self._forget(old, close_code=None)
        self._sessions[session.user_id] = session
        early = self._expected.pop(session.user_id, None) or {}
        for order in sorted(early):
            self.send("", session.user_id, early[order], order)

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    # ------------------------------------------------------------------ Delivery

    def send(self, node_id: str, user_id: str, message: dict[str, Any], order: int) -> None:
        session = self._sessions.get(user_id)
        if session is None and user_id in self._expected:
            self._expected[user_id][order] = message
            return
        if session is not None:
            self._watch_gap(session, session.deliver(order, message))

    def reply(self, session: Session, order: int, message: dict[str, Any]) -> None:
        """A command's reply, after the user's events up to `order` (see `Session.reply`)."""
        self._watch_gap(session, session.reply(order, message))

    def _watch_gap(self, session: Session, waiting: bool) -> None:
        if waiting and session.gap_handle is None:
            loop = asyncio.get_running_loop()
            session.gap_handle = loop.call_later(ORDER_GAP_S, self._gap_expired, session)
        elif not waiting and session.gap_handle is not None:
            session.gap_handle.cancel()  # the late event came: the gap closed by itself
            session.gap_handle = None

    def push_position(self, user_id: str, message: dict[str, Any], as_of: int) -> None:
        session = self._sessions.get(user_id)
        if session is not None and session.order <= as_of:
            session.push(message)

    def _gap_expired(self, session: Session) -> None:
        """An event never came (handed off while this node's listener was reconnecting, say):
        make the client resume, so that its welcome's state covers what it missed, rather than
        see events out of order."""
        session.gap_handle = None
        log.warning("event_gap", user_id=session.user_id, order=session.order)
        session.abandon_gap()
        conn, session.conn = session.conn, None
        self.stop_pings(session)
        if conn is not None:
            conn.close(CloseCode.SERVICE_RESTART, "events were lost; resume")

    def probe(self, node_id: str, user_id: str) -> None:
        session = self._sessions.get(user_id)
        if session is not None and session.conn is not None:
            session.probed = True
            self._ping(session)

    def end_session(
        self, node_id: str, user_id: str, session_id: str, close_code: int | None
    ) -> None:
        session = self._sessions.get(user_id)
        if session is not None and session.session_id == session_id:
            del self._sessions[user_id]
            self._forget(session, close_code)

    def local_users(self) -> Iterable[str]:
        return self._sessions.keys()

    # ------------------------------------------------------------------ pings

    def start_pings(self, session: Session) -> None:
        self.stop_pings(session)
        loop = asyncio.get_running_loop()
        session.ping_handle = loop.call_later(self._ping_interval_s, self._ping_tick, session)

    def stop_pings(self, session: Session) -> None:
        if session.ping_handle is not None:
            session.ping_handle.cancel()
            session.ping_handle = None

    def _ping_tick(self, session: Session) -> None:
        session.ping_handle = None
        if session.conn is not None:
            self._ping(session)

    def _ping(self, session: Session) -> None:
        session.push({"type": "ping", "nonce": session.next_nonce()})
        self.start_pings(session)  # the next regular ping counts from this one

    def _forget(self, session: Session, close_code: int | None) -> None:
        self.stop_pings(session)
        conn, session.conn = session.conn, None
        if conn is not None:
            conn.close(close_code or 1000, "session ended")
