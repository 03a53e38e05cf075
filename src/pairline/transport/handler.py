"""One client connection's protocol life: hello within the deadline, then messages in order.

Transport-neutral: an adapter (WebSocket, SSE) feeds it raw messages and tells it when the
connection ends; it writes back through the adapter's `Connection`.
"""

from __future__ import annotations

import asyncio
import enum

from pairline import metrics
from pairline.core.protocol import CloseCode, Hello, decode
from pairline.errors import ProtocolError, StoreUnavailable
from pairline.transport.flood import FloodGuard
from pairline.transport.gateway import Gateway
from pairline.transport.session import Connection, Session

HELLO_TIMEOUT_S = 5.0


class Phase(enum.Enum):
    AWAITING_HELLO = "awaiting_hello"
    OPEN = "open"
    CLOSED = "closed"


class ConnectionHandler:
    __slots__ = (
        "_budget",
        "_draining",
        "_guard",
        "_hello_timer",
        "_inbox",
        "_task",
        "conn",
        "gateway",
        "gone",
        "peer",
        "phase",
        "session",
    )

    def __init__(
        self, gateway: Gateway, conn: Connection, guard: FloodGuard, peer: str | None
    ) -> None:
        self.gateway = gateway
        self.conn = conn
        self.peer = peer
        self._guard = guard
        self._budget = guard.budget()
        self.phase = Phase.AWAITING_HELLO
        self.gone = False  # the connection itself is closed (phase CLOSED may come first)
        self.session: Session | None = None
        self._inbox: list[bytes | str] = []  # (a deque takes ~700 bytes even when empty)
        self._draining = False
        self._task: asyncio.Task[None] | None = None  # held so the loop cannot drop it
        self._hello_timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            HELLO_TIMEOUT_S, self._hello_overdue
        )
        if not guard.admit(peer):
            self.peer = None  # nothing was counted for it
            metrics.RATE_LIMITED.labels("connections").inc()
            self._close(CloseCode.FLOOD, "too many connections from this address")

    def received(self, data: bytes | str) -> bool:
        """A message arrived; messages of one connection are processed strictly in order.
        False if it was not taken: the connection is closed (or closes now, over budget)."""
        if self.phase is Phase.CLOSED:
            return False
        if not self._budget.spend():
            metrics.RATE_LIMITED.labels("messages").inc()
            self._close(CloseCode.FLOOD, "too many messages")
            return False
        self._inbox.append(data)
        if not self._draining:
            self._draining = True
            self._task = asyncio.create_task(self._drain())
        return True

    async def open(self, hello: Hello) -> Session | None:
        """Say the hello a transport carries outside its message stream (SSE: the request
        itself is the hello); the session, or None if refused (the connection is closed)."""
        if self.phase is not Phase.AWAITING_HELLO or self._draining or self._inbox:
            return None
        self._draining = True  # as in `_drain`: an end of the connection meanwhile waits
        try:
            await self._open(hello)
        finally:
            self._draining = False
            if self.gone and self.session is not None:
                await self.gateway.disconnected(self.session, self.conn)
        return None if self.gone else self.session

    def closed(self) -> None:
        """The connection is gone (either side closed it, or it broke)."""
        if self.gone:
            return
        self.gone = True
        self.phase = Phase.CLOSED
        self._cancel_hello_timer()
        self._inbox.clear()
        self._guard.release(self.peer)
        self.peer = None
        if self.session is not None and not self._draining:
            self._task = asyncio.create_task(self.gateway.disconnected(self.session, self.conn))

    async def _drain(self) -> None:
        try:
            while self._inbox and self.phase is not Phase.CLOSED:
                data = self._inbox.pop(0)
                if self.session is None:
                    await self._hello(data)
                else:
                    await self.gateway.receive(self.session, data)
        finally:
            self._draining = False
            if self.gone and self.session is not None:
                await self.gateway.disconnected(self.session, self.conn)
            if self._task is asyncio.current_task():
                self._task = None  # done: a finished task kept per idle connection costs memory

    async def _hello(self, data: bytes | str) -> None:
        try:
            message = decode(data)
        except ProtocolError:
            message = None
        if not isinstance(message, Hello):
            self._refuse("the first message must be a valid hello")
            return
        await self._open(message)

    async def _open(self, message: Hello) -> None:
        self._cancel_hello_timer()
        try:
            session = await self.gateway.hello(self.conn, message)
        except StoreUnavailable:
            # The client reconnects with backoff and resumes; nothing was changed for it.
            self._close(CloseCode.TRY_AGAIN_LATER, "a backend is unreachable; try again later")
            return
        if session is None:
            self.phase = Phase.CLOSED
            return
        self.session = session
        if self.phase is not Phase.CLOSED:
            self.phase = Phase.OPEN

    def _hello_overdue(self) -> None:
        self._hello_timer = None
        if self.session is None and self.phase is Phase.AWAITING_HELLO:
            self._refuse("no hello within 5 s")

    def _refuse(self, reason: str) -> None:
        self._close(CloseCode.BAD_HELLO, reason)

    def _close(self, code: int, reason: str) -> None:
        self.phase = Phase.CLOSED
        self._inbox.clear()
        self._cancel_hello_timer()
        self.conn.close(code, reason)

    def _cancel_hello_timer(self) -> None:
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None
