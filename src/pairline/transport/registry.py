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
ORDER_GAP_S = 1.0


class SessionRegistry:
    """Holds each local user's session and keeps its connection pinged.

    As `Delivery` it serves the single-node case: every node id is this node.
    """

    def __init__(self, ping_interval_ms: int) -> None:
        self._sessions: dict[str, Session] = {}
        self._ping_interval_s = ping_interval_ms / 1000

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, user_id: str) -> Session | None:
        return self._sessions.get(user_id)

    def add(self, session: Session) -> None:
        old = self._sessions.get(session.user_id)
        if old is not None and old is not session:
            self._forget(old, close_code=None)
        self._sessions[session.user_id] = session

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    # ------------------------------------------------------------------ Delivery

    def send(self, node_id: str, user_id: str, message: dict[str, Any], order: int) -> None:
        session = self._sessions.get(user_id)
        if session is not None and session.deliver(order, message) and session.gap_handle is None:
            loop = asyncio.get_running_loop()
            session.gap_handle = loop.call_later(ORDER_GAP_S, self._gap_expired, session)

    def push_position(self, user_id: str, message: dict[str, Any], as_of: int) -> None:
        session = self._sessions.get(user_id)
        if session is not None and session.order <= as_of:
            session.push(message)

    def _gap_expired(self, session: Session) -> None:
        """An event never came (its node died, or its publish failed): deliver what waited,
        then make the client resume so its welcome's state covers what was missed."""
        session.gap_handle = None
        log.warning("event_gap", user_id=session.user_id, order=session.order)
        session.skip_gap()
        conn, session.conn = session.conn, None
        self.stop_pings(session)
        if conn is not None:
            conn.close(CloseCode.SERVICE_RESTART, "events were lost; resume")

    def probe(self, node_id: str, user_id: str) -> None:
        session = self._sessions.get(user_id)
        if session is not None and session.conn is not None:
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
