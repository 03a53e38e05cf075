"""Between connections and the engine: hello and resume, then every client message.

Transport-neutral: the WebSocket and SSE adapters hand it raw messages and a `Connection` to
write to; it knows sessions and the protocol, and nothing of matching.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from pairline import metrics
from pairline.core.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Chat,
    CloseCode,
    Hello,
    Join,
    MediaLost,
    Pong,
    Signal,
    command_id_of,
    decode,
    encode,
)
from pairline.engine import Engine
from pairline.errors import (
    BadRequest,
    Banned,
    Busy,
    Internal,
    PairlineError,
    ProtocolError,
    RateLimited,
    StoreUnavailable,
)
from pairline.identity import Authenticator
from pairline.limits import KeyedBuckets
from pairline.store.base import order_before
from pairline.transport.heard import HeardBatch
from pairline.transport.registry import SessionRegistry
from pairline.transport.session import Connection, Session

log = structlog.get_logger("pairline.gateway")

DETACH_RETRY_S = (0.2, 0.5, 1.0, 2.0, 4.0)
STORE_FAILURE_LOG_S = 1.0  # at most one `store_unavailable` line per this many seconds


def new_session_id() -> str:
    return "s_" + secrets.token_urlsafe(16)


class Gateway:
    def __init__(
        self,
        engine: Engine,
        registry: SessionRegistry,
        auth: Authenticator,
        *,
        node_id: str,
        heartbeat_ms: int,
        heard_interval_ms: int,
        replay_limit: int,
        state_dies_with_node: bool,
        relay_limit: KeyedBuckets | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.auth = auth
        self.node_id = node_id
        self.heartbeat_ms = heartbeat_ms
        self.heard_interval_s = heard_interval_ms / 1000
        self.replay_limit = replay_limit
        self.state_dies_with_node = state_dies_with_node
        # `chat` and `signal` per user (kept across reconnects): a partner is not a firehose.
        self.relay_limit = relay_limit
        # False while this node cannot hear other nodes' events for its users (its bus is
        # reconnecting): hellos are turned away with 1012 until it can.
        self.ready = ready or (lambda: True)
        self._store_failures = 0  # messages failed for the store since the last line logged
        self._heard_batch = HeardBatch(engine.heard, self._heard_failed)
        self._store_failure_logged_at = -STORE_FAILURE_LOG_S

    # ------------------------------------------------------------------ hello

    async def hello(self, conn: Connection, hello: Hello) -> Session | None:
        """Open, take over or resume the user's session for `conn`; None if refused (closed)."""
        if not self.ready():
            conn.close(CloseCode.SERVICE_RESTART, "this node is reconnecting to its peers")
            return None
        if hello.v != PROTOCOL_VERSION:
            conn.close(CloseCode.BAD_HELLO, f"protocol version {PROTOCOL_VERSION} only")
            return None
        verified = await self.auth.verify(hello.token)
        if verified is None:
            conn.close(CloseCode.BAD_HELLO, "bad or expired token")
            return None
        identity = verified.identity
        user_id = identity.user_id
        existing = self.registry.get(user_id)
        seen = existing.seq if existing is not None else 0
        try:
            attached = await self.engine.attach(
                user_id, identity.display_name, self.node_id, new_session_id(), verified.kind
            )
        except Banned as exc:
            conn.close(CloseCode.BANNED, str(exc))
            return None
        session = self.registry.get(user_id)
        if session is None or session.session_id != attached.session_id:
            session = Session(
                attached.session_id, user_id, identity.display_name, self.replay_limit
            )
            # This hello's own events for the user (a re-pairing on resume, say) follow the
            # welcome as live messages; what came earlier is in the welcome's state snapshot.
            session.order = order_before(attached.effects, user_id, attached.order)
            self.registry.add(session)
            seen = 0
            if not attached.fresh:
                # The session's stream lives on another node (or died with it): it cannot go
                # on here, so it gets a new id while the user's state carries on.
                session = await self._renew(session)
        self.registry.unexpect(user_id)  # (an existing session took the events directly)
        resumed = hello.resume == session.session_id and not attached.fresh
        if resumed and (session.events_lost or session.replay_after(hello.last_seq) is None):
            # Too far behind to replay, or events were lost on their way here: a fresh
            # session (the client rebuilds from the welcome), while the user's state carries on.
            session = await self._renew(session)
            resumed = False
            seen = 0
        if hello.resume:
            (metrics.RESUMED if resumed else metrics.RESUME_EXPIRED).inc()
        state = await self.engine.snapshot(user_id)
        # From here on nothing awaits: welcome, replay and live messages leave in order.
        replay = session.replay_after(hello.last_seq if resumed else seen) or []
        old = session.conn
        session.conn = None
        if old is not None and old is not conn:
            old.close(CloseCode.REPLACED, "session taken over by a newer connection")
        welcome: dict[str, Any] = {
            "type": "welcome",
            "session": session.session_id,
            "user_id": user_id,
            "last_seq": session.seq if resumed else seen,
            "state": state,
            "heartbeat_ms": self.heartbeat_ms,
            "replayed": len(replay) if resumed else 0,
        }
        conn.send(encode(welcome))
        for data in replay:
            conn.send(data)
        session.conn = conn
        self.registry.start_pings(session)
        log.debug("hello", user_id=user_id, session=session.session_id, resumed=resumed)
        return session

    async def _renew(self, session: Session) -> Session:
        fresh = Session(new_session_id(), session.user_id, session.display_name, self.replay_limit)
        fresh.order = session.order
        await self.engine.renew_session(session.user_id, fresh.session_id)
        fresh.conn, session.conn = session.conn, None
        self.registry.add(fresh)
        return fresh

    # ------------------------------------------------------------------ messages

    async def receive(self, session: Session, data: bytes | str) -> None:
        """One client message after hello. Bad input is answered and changes nothing."""
        if self.registry.get(session.user_id) is not session:
            return  # the session ended while this message was in flight
        try:
            message = decode(data)
            if not isinstance(message, Join) or session.cached_reply(message.id) is None:
                self.engine.admit(message)  # before anything reaches the store for it
            # A pong always counts at once: pings are what finds stale users.
            self._heard(session, at_once=isinstance(message, Pong))
            await self._dispatch(session, message)
        except ProtocolError as exc:
            session.push(exc.to_wire(command_id_of(data)))
        except StoreUnavailable as exc:
            self._store_failed(exc)
            session.push(
                Internal("the service could not reach its store; try again").to_wire(
                    command_id_of(data)
                )
            )
        except PairlineError:
            log.exception("message_failed", user_id=session.user_id)
            session.push(
                Internal("the server could not process this message").to_wire(command_id_of(data))
            )

    def _store_failed(self, exc: StoreUnavailable) -> None:
        """One line per interval, with a count and no traceback: while the store is away or
        swamped every message fails alike, and formatting thousands of tracebacks would only
        deepen an overload (it took a quarter of a node's CPU in a 10k-user burst)."""
        self._store_failures += 1
        now = asyncio.get_running_loop().time()
        if now - self._store_failure_logged_at >= STORE_FAILURE_LOG_S:
            log.warning("store_unavailable", failures=self._store_failures, error=str(exc))
            self._store_failures = 0
            self._store_failure_logged_at = now

    def _heard(self, session: Session, *, at_once: bool) -> None:
        """Tell the store the user is alive: at once for a pong or when a health check waits
        for it, else at most once per interval (with Redis, every ack and chat would otherwise
        cost a script call just to move a timestamp that only needs to be roughly fresh).
        "At once" is the next batch (`HeardBatch`), which goes out on the loop's next pass."""
        now = asyncio.get_running_loop().time()
        if not (at_once or session.probed) and (
            now - session.heard_told_at < self.heard_interval_s or self.engine.overloaded
        ):
            # Only pongs and probe answers must reach the store; the rest keeps "last heard"
            # fresh to spare pairings a health check, and waits while the store is swamped.
            return
        session.probed = False  # a probe that comes after this batch left waits for the next
        session.heard_told_at = now
        self._heard_batch.add(session.user_id)

    def _heard_failed(self, user_ids: Sequence[str]) -> None:
        """A batch did not reach the store: each user's next message tells it again."""
        for user_id in user_ids:
            session = self.registry.get(user_id)
            if session is not None:
                session.probed = True

    async def _dispatch(self, session: Session, message: Any) -> None:
        user_id = session.user_id
        if isinstance(message, Ack):
            if message.seq > session.seq:
                raise BadRequest(
                    f"ack for seq {message.seq}, but the last one sent is {session.seq}"
                )
            for match_id in session.ack(message.seq):
                await self.engine.ack_matched(user_id, match_id)
        elif isinstance(message, Pong):
            return  # being heard from is all a pong does
        elif isinstance(message, Chat | Signal):
            self._take_relay_budget(user_id)
            await self.engine.relay(user_id, message)
        elif isinstance(message, MediaLost):
            await self.engine.media_lost(user_id, message.match_id)
        elif isinstance(message, Hello):
            raise BadRequest("hello was already received on this connection")
        else:
            await self._command(session, message)

    def _take_relay_budget(self, user_id: str) -> None:
        if self.relay_limit is None:
            return
        now = asyncio.get_running_loop().time()
        if not self.relay_limit.take(user_id, now):
            metrics.RATE_LIMITED.labels("relay").inc()
            retry_after_ms = int(self.relay_limit.retry_after(user_id, now) * 1000) + 1
            raise RateLimited(
                "chat and signal messages come too fast: this one was not passed on",
                retry_after_ms=retry_after_ms,
            )

    async def _command(self, session: Session, command: Any) -> None:
        cached = session.cached_reply(command.id)
        if cached is not None:  # a re-sent id: the same answer again, no second effect
            session.push(cached)
            return

        def respond(reply: dict[str, Any], order: int) -> None:
            payload = {"type": "reply", "re": command.id, "ok": True, **reply}
            session.remember_reply(command.id, payload)
            self.registry.reply(session, order, payload)

        try:
            await self.engine.command(session.user_id, command, respond)
        except ProtocolError as exc:
            if isinstance(exc, Internal):
                raise  # not remembered: a retry may succeed
            payload = exc.to_wire(command.id)
            if not isinstance(exc, Busy):  # (nor is a shed join)
                session.remember_reply(command.id, payload)
            session.push(payload)

    # ------------------------------------------------------------------ connection end

    async def disconnected(self, session: Session, conn: Connection) -> None:
        """`conn` is gone; if it was the session's live one, the resume window starts."""
        if session.conn is not conn or self.registry.get(session.user_id) is not session:
            return
        session.conn = None
        self.registry.stop_pings(session)
        for delay in DETACH_RETRY_S:
            try:
                await self.engine.detach(session.user_id, session.session_id)
                return
            except StoreUnavailable:
                await asyncio.sleep(delay)  # the stale sweep catches it if the store stays away
            if session.conn is not None:
                return  # it came back meanwhile

    async def resync(self) -> None:
        """Messages for this node may have been lost (a pub/sub gap, lost Redis data): every
        client reconnects, and its welcome carries the store's state."""
        log.warning("resync", sessions=len(self.registry))
        for session in self.registry.sessions():
            session.events_lost = True
            conn, session.conn = session.conn, None
            self.registry.stop_pings(session)
            if conn is not None:
                conn.close(CloseCode.SERVICE_RESTART, "resynchronising; resume")

    async def farewell(self, session: Session) -> None:
        """This node is stopping: a queued user is told its place is gone, then closed.

        Only where the state dies with the node (the memory store); with shared state the user
        reconnects to another node and resumes instead.
        """
        if not self.state_dies_with_node or self.registry.get(session.user_id) is not session:
            return
        state = await self.engine.snapshot(session.user_id)
        if state["status"] == "queued":
            session.push({"type": "queue_cancelled", "reason": "shutdown"})

    async def shutdown(self) -> None:
        """Close whatever connection is still open once the node stops serving."""
        for session in self.registry.sessions():
            await self.farewell(session)
            self.registry.stop_pings(session)
            conn, session.conn = session.conn, None
            if conn is not None:
                conn.close(1001, "server shutting down")
        await self._heard_batch.close()
