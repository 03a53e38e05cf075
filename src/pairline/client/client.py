"""The asyncio client: one user's session over WebSocket, kept alive across reconnects.

One task (the runner) owns the socket: it reads every message, answers pings, acks,
resolves command futures and records events; on a drop it reconnects and resumes.
User-facing coroutines only send, and wait on futures or on the event log.
"""

# Per-call `timeout=` arguments are this API's contract (tests read better with them).

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

from websockets.exceptions import ConnectionClosed, WebSocketException

from .backoff import jittered
from .commands import Pending, PendingCommands
from .connection import ABNORMAL_CLOSURE, Connection, HandshakeFailed, close_code_of
from .endpoints import fetch_status, guest_login, ws_url
from .errors import CommandError, ConnectionLost
from .eventlog import EventLog
from .events import EVENT_TYPES, Error, Event, Matched, Ping, Reply, Welcome, parse_event
from .state import Snapshot, apply_event, apply_reply, idle_snapshot, match_id_of

log = logging.getLogger("pairline.client")

E = TypeVar("E", bound=Event)

# Close codes after which coming back cannot help (protocol.md §2, §5).
FATAL_CLOSE_CODES = frozenset({4401, 4403, 4409})
_TYPE_NAMES = {cls: name for name, cls in EVENT_TYPES.items()}
# What a failed connection attempt can raise.
_CONNECT_ERRORS = (OSError, TimeoutError, WebSocketException, HandshakeFailed)


class Client:
    def __init__(
        self,
        base_urls: str | Sequence[str],
        *,
        token: str | None = None,
        display_name: str | None = None,
        auto_ack: bool = True,
        ack_matched: bool = True,
        answer_pings: bool = True,
        reconnect: bool = True,
        backoff: Sequence[float] = (1.0, 2.0, 4.0),
        ping_timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        self._bases = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not self._bases:
            raise ValueError("at least one base URL is needed")
        for base in self._bases:
            ws_url(base)  # fail now on a bad URL, not at the first reconnect
        self._base_index = 0
        self._token = token
        self.display_name = display_name
        self._auto_ack = auto_ack
        self._ack_matched = ack_matched
        self._answer_pings = answer_pings
        self._reconnect = reconnect
        self._backoff = tuple(backoff)
        self._ping_timeout_s = ping_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._rng = rng if rng is not None else random.Random()

        self._user_id: str | None = None
        self._session: str | None = None
        self._last_seq = 0
        self._replay_until = 0  # the welcome's last_seq: seqs up to it are replayed ones
        self._replaying = False
        self._state: Snapshot = idle_snapshot()
        self._last_match_id: str | None = None
        self._log = EventLog()
        self.welcomes: list[dict[str, Any]] = []
        # Where in events_log each welcome arrived, to read both as one timeline.
        self.welcome_positions: list[int] = []
        self._welcomed = asyncio.Event()
        self.closed_code: int | None = None
        # Set once a `matched` went unacked on purpose (ack_matched=False): acks are
        # cumulative, so no later seq may be acked either.
        self._acks_frozen = False

        self._conn: Connection | None = None
        self._gen = 0
        self._link_changed = asyncio.Event()
        self._heartbeat_s = 0.0
        self._last_ping = 0.0
        self._drop_mode: Literal["hold", "auto"] | None = None
        self._resume_now = asyncio.Event()
        self._closing = False
        self._stopped = asyncio.Event()
        self._lost: ConnectionLost | None = None
        self._runner: asyncio.Task[None] | None = None
        self._pending = PendingCommands()
        # A per-client prefix: two clients of one user share a session (takeover), and the
        # server answers a repeated id with the old answer.
        self._id_prefix = secrets.token_hex(3)
        self._ids = itertools.count(1)

    # ---- properties ---------------------------------------------------------------

    @property
    def user_id(self) -> str:
        if self._user_id is None:
            raise RuntimeError("user_id is known only after connecting")
        return self._user_id

    @property
    def token(self) -> str | None:
        return self._token

    @property
    def session(self) -> str | None:
        return self._session

    @property
    def last_seq(self) -> int:
        """The highest seq processed in the current session."""
        return self._last_seq

    @property
    def state(self) -> Snapshot:
        return self._state

    @property
    def match_id(self) -> str | None:
        return match_id_of(self._state)

    @property
    def events_log(self) -> list[Event]:
        """Every server message but `welcome`, in arrival order (replies and errors too)."""
        return self._log.events

    @property
    def connected(self) -> bool:
        return self._conn is not None

    @property
    def lost(self) -> ConnectionLost | None:
        """Why the client stopped, if it stopped other than by `close()`."""
        return self._lost

    # ---- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> dict[str, Any]:
        """Log in as a guest if no token was given, connect, and return the welcome.

        Each base URL is tried once; raises ConnectionLost if none answers.
        """
        if self._runner is not None or self._stopped.is_set():
            raise RuntimeError("a Client connects once")
        if self._token is None:
            await self._login()
        last: BaseException | None = None
        for index in range(len(self._bases)):
            self._base_index = index
            try:
                welcome = await self._open(self._bases[index])
                break
            except _CONNECT_ERRORS as exc:
                if isinstance(exc, HandshakeFailed) and exc.code in FATAL_CLOSE_CODES:
                    raise ConnectionLost(exc.code, str(exc)) from exc
                last = exc
        else:
            raise ConnectionLost(None, f"could not connect: {last!r}") from last
        self._runner = asyncio.create_task(self._run(), name=f"pairline-client-{self._user_id}")
        return welcome.raw

    async def _login(self) -> None:
        last: Exception | None = None
        for base in self._bases:
            try:
                self._token, self._user_id = await guest_login(
                    base, self.display_name, self._connect_timeout_s
                )
                return
            except Exception as exc:  # any failure: try the next base, re-raise the last
                last = exc
        assert last is not None
        raise last

    async def close(self) -> None:
        """Close cleanly (code 1000) and stop; pending commands fail with ConnectionLost."""
        if self._closing:
            await self._stopped.wait()
            return
        self._closing = True
        conn = self._conn
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(1000), self._connect_timeout_s)
            except (TimeoutError, OSError, WebSocketException):
                conn.abort()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        self._stop(None)

    async def wait_closed(self, timeout: float | None = None) -> ConnectionLost | None:
        """Wait until the client stops; its ConnectionLost, or None after `close()`."""
        async with asyncio.timeout(timeout):
            await self._stopped.wait()
        return self._lost

    async def drop(self, reconnect: bool = False) -> None:
        """Test hook: abort the TCP connection without a close frame.

        The client then stays away until `resume()`, or, with reconnect=True, reconnects
        by itself on the backoff schedule.
        """
        conn = self._conn
        if conn is None:
            raise RuntimeError("not connected")
        self._drop_mode = "auto" if reconnect else "hold"
        self._resume_now.clear()
        conn.abort()
        while self._conn is conn and not self._stopped.is_set():
            await self._link_changed.wait()

    async def wait_welcome(self, count: int, timeout: float | None = 10.0) -> dict[str, Any]:
        """Wait until this client has been welcomed `count` times in all (its first connect
        and every reconnect); return the latest welcome."""
        async with asyncio.timeout(timeout):
            while len(self.welcomes) < count:
                await self._welcomed.wait()
        return self.welcomes[-1]

    def freeze(self) -> None:
        """Test hook: from now on send nothing unprompted (no pong, no ack), like a hung tab."""
        self._answer_pings = False

    async def resume(self, timeout: float | None = 30.0) -> dict[str, Any]:
        """Reconnect now (resuming the session) and return the new welcome."""
        async with asyncio.timeout(timeout):
            if self._conn is None:
                self._resume_now.set()
            while self._conn is None:
                if self._stopped.is_set():
                    raise self._lost or ConnectionLost(None, "client closed")
                await self._link_changed.wait()
        return self.welcomes[-1]

    async def refresh_state(self) -> Snapshot:
        """Replace `state` with the server's snapshot (`GET /v1/status`)."""
        if self._token is None:
            raise RuntimeError("no token yet")
        base = self._bases[self._base_index]
        self._state = await fetch_status(base, self._token, self._connect_timeout_s)
        self._note_match(self._state)
        return self._state

    # ---- events ---------------------------------------------------------------------

    def events(self) -> AsyncIterator[Event]:
        """Every event from the first one on, in order, except answers to commands.

        Ends after `close()`; raises ConnectionLost if the client stopped otherwise.
        """
        return self._log.iterate()

    @overload
    async def wait_for(
        self,
        kind: type[E],
        timeout: float | None = 10.0,
        where: Callable[[E], bool] | None = None,
    ) -> E: ...

    @overload
    async def wait_for(
        self,
        kind: str | Iterable[str],
        timeout: float | None = 10.0,
        where: Callable[[Event], bool] | None = None,
    ) -> Event: ...

    async def wait_for(
        self,
        kind: type[Any] | str | Iterable[str],
        timeout: float | None = 10.0,
        where: Callable[[Any], bool] | None = None,
    ) -> Any:
        """The first not-yet-consumed event of that type (see eventlog.py for the cursor).

        `kind` is a type name, several names, or an event class (then typed as such).
        Raises TimeoutError listing the last events, or ConnectionLost once the client
        stopped with no such event left.
        """
        if not isinstance(kind, type):
            return await self._log.wait_for(kind, timeout, where)
        cls = kind
        if cls not in _TYPE_NAMES:
            raise ValueError(f"{cls.__name__} is not a concrete event class")

        def matches(event: Event) -> bool:
            # A malformed message of that type falls back to a plain Event: skip it.
            return isinstance(event, cls) and (where is None or where(event))

        return await self._log.wait_for(_TYPE_NAMES[cls], timeout, matches)

    # ---- commands and other messages ---------------------------------------------------

    async def command(
        self, type_: str, *, id: str | None = None, timeout: float = 10.0, **fields: Any
    ) -> dict[str, Any]:
        """Send a command and return its reply minus `type`/`re`/`seq`.

        Raises CommandError on an `error` answer. The command survives reconnects: it is
        sent again, under the same id, on a new connection if no answer came yet (the
        server answers a repeated id without a second effect).
        """
        if self._stopped.is_set():
            raise self._lost or ConnectionLost(None, "client closed")
        cid = id if id is not None else f"{self._id_prefix}-{next(self._ids)}"
        pending = self._pending.add(type_, {"type": type_, "id": cid, **fields})
        try:
            await self._send_pending(pending)
            async with asyncio.timeout(timeout):
                return await pending.future
        except TimeoutError:
            raise TimeoutError(f"no answer to {type_} (id {cid}) within {timeout} s") from None
        finally:
            self._pending.forget(pending)

    async def join(
        self,
        interests: Sequence[str] | None = None,
        lang: str | None = None,
        *,
        id: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if interests is not None:
            fields["interests"] = list(interests)
        if lang is not None:
            fields["lang"] = lang
        return await self.command("join", id=id, timeout=timeout, **fields)

    async def leave(self, *, id: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        return await self.command("leave", id=id, timeout=timeout)

    async def skip(
        self, match_id: str | None = None, *, id: str | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        return await self.command("skip", id=id, timeout=timeout, **self._match(match_id))

    async def end(
        self, match_id: str | None = None, *, id: str | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        return await self.command("end", id=id, timeout=timeout, **self._match(match_id))

    async def block(
        self, match_id: str | None = None, *, id: str | None = None, timeout: float = 10.0
    ) -> dict[str, Any]:
        return await self.command("block", id=id, timeout=timeout, **self._match(match_id))

    async def report(
        self,
        reason: str,
        details: str = "",
        match_id: str | None = None,
        *,
        id: str | None = None,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        return await self.command(
            "report",
            id=id,
            timeout=timeout,
            reason=reason,
            details=details,
            **self._match(match_id),
        )

    async def chat(self, text: str, match_id: str | None = None) -> None:
        await self.send({"type": "chat", "text": text, **self._match(match_id)})

    async def signal(self, data: Any, match_id: str | None = None) -> None:
        await self.send({"type": "signal", "data": data, **self._match(match_id)})

    async def media_lost(self, match_id: str | None = None) -> None:
        await self.send({"type": "media_lost", **self._match(match_id)})

    async def ack(self, seq: int | None = None) -> None:
        """Ack up to `seq` (default: everything processed), even with auto-acks off."""
        await self.send({"type": "ack", "seq": self._last_seq if seq is None else seq})

    async def send(self, message: dict[str, Any], timeout: float = 10.0) -> None:
        """Send one raw message, waiting (up to `timeout`) for a live connection.

        A message whose send failed because the socket had just died was not written,
        so it is sent again on the next connection.
        """
        async with asyncio.timeout(timeout):
            failed: Connection | None = None
            while True:
                if self._stopped.is_set():
                    raise self._lost or ConnectionLost(None, "client closed")
                conn = self._conn
                if conn is None or conn is failed:
                    await self._link_changed.wait()
                    continue
                try:
                    await conn.send(message)
                    return
                except ConnectionClosed:
                    failed = conn

    def _match(self, match_id: str | None) -> dict[str, Any]:
        # Default to the current match, else the most recent one: a late skip/end names
        # the match that just ended (protocol.md §5). Omitted if there never was one.
        chosen = match_id or self.match_id or self._last_match_id
        return {"match_id": chosen} if chosen is not None else {}

    async def _send_pending(self, pending: Pending) -> None:
        conn, gen = self._conn, self._gen
        if conn is None:
            return  # sent once the next connection has replayed
        with contextlib.suppress(ConnectionClosed):
            await conn.send(pending.message)
            pending.gen = gen

    # ---- the runner ---------------------------------------------------------------------

    async def _open(self, base: str) -> Welcome:
        hello: dict[str, Any] = {
            "type": "hello",
            "v": 1,
            "token": self._token,
            "last_seq": self._last_seq,
        }
        if self._session is not None:
            hello["resume"] = self._session
        conn, welcome = await Connection.open(ws_url(base), hello, self._connect_timeout_s)
        self._install(conn, welcome)
        return welcome

    def _install(self, conn: Connection, welcome: Welcome) -> None:
        if welcome.session != self._session:
            # A fresh session (first connect, or the old one expired): its stream starts
            # where the server says, and nothing before it will be replayed.
            if self._session is not None:
                log.info("session %s replaced by a fresh one %s", self._session, welcome.session)
            self._session = welcome.session
            self._last_seq = welcome.last_seq
        self._user_id = welcome.user_id
        self._replay_until = welcome.last_seq
        self._replaying = self._last_seq < self._replay_until
        # The welcome's snapshot already includes the effect of the replay that follows.
        self._state = dict(welcome.state) if welcome.state else idle_snapshot()
        self._note_match(self._state)
        self.welcomes.append(welcome.raw)
        self.welcome_positions.append(len(self._log.events))
        self._welcomed.set()  # wakes every waiter; the next welcome gets a fresh event
        self._welcomed = asyncio.Event()
        self._heartbeat_s = (welcome.heartbeat_ms or 0) / 1000
        self._last_ping = asyncio.get_running_loop().time()
        self._gen += 1
        self._set_conn(conn)

    def _set_conn(self, conn: Connection | None) -> None:
        self._conn = conn
        self._link_changed.set()
        self._link_changed = asyncio.Event()

    def _note_match(self, state: Snapshot) -> None:
        match_id = match_id_of(state)
        if match_id is not None:
            self._last_match_id = match_id

    async def _run(self) -> None:
        try:
            while True:
                conn = self._conn
                assert conn is not None
                code = await self._serve(conn)
                self._set_conn(None)
                if self._closing:
                    return
                mode, self._drop_mode = self._drop_mode, None
                if code in FATAL_CLOSE_CODES:
                    raise ConnectionLost(code, "the server closed the connection for good")
                if mode == "hold":
                    await self._resume_now.wait()
                    await self._reconnect_loop(code, immediate=True)
                elif mode == "auto" or self._reconnect:
                    await self._reconnect_loop(code, immediate=False)
                else:
                    raise ConnectionLost(code, "connection dropped and reconnect is off")
        except ConnectionLost as lost:
            self._stop(lost)
        except Exception as exc:  # a bug here must not leave waiters hanging forever
            log.exception("client runner failed")
            self._stop(ConnectionLost(None, f"client failure: {exc!r}"))

    async def _reconnect_loop(self, code: int, immediate: bool) -> None:
        delays = ([0.0] if immediate else []) + jittered(self._backoff, self._rng)
        last: BaseException | None = None
        for delay in delays:
            self._resume_now.clear()
            # `resume()` cuts a backoff wait short.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._resume_now.wait(), delay)
            # With several nodes, each attempt goes to the next one: the one that dropped
            # us may be the one that is down.
            self._base_index = (self._base_index + 1) % len(self._bases)
            try:
                await self._open(self._bases[self._base_index])
                self._resume_now.clear()
                return
            except _CONNECT_ERRORS as exc:
                if isinstance(exc, HandshakeFailed) and exc.code in FATAL_CLOSE_CODES:
                    raise ConnectionLost(exc.code, str(exc)) from exc
                log.info("reconnect to %s failed: %r", self._bases[self._base_index], exc)
                last = exc
        raise ConnectionLost(code, f"gave up reconnecting after {len(delays)} attempts: {last!r}")

    async def _serve(self, conn: Connection) -> int:
        """Read one connection until it ends; return its close code."""
        try:
            if not self._replaying:
                await self._resend_pending(conn)
            while True:
                try:
                    raw = await conn.recv(self._watchdog_remaining())
                except TimeoutError:
                    log.warning(
                        "no ping from the server in %.1f s: reconnecting", self._watchdog_limit()
                    )
                    conn.abort()
                    return ABNORMAL_CLOSURE
                if raw is not None:
                    await self._handle(conn, raw)
        except ConnectionClosed as exc:
            self.closed_code = close_code_of(exc)
            return self.closed_code

    def _watchdog_limit(self) -> float:
        # Never below two server ping intervals, so a server configured to ping rarely
        # does not make the client flap.
        return max(self._ping_timeout_s, 2 * self._heartbeat_s)

    def _watchdog_remaining(self) -> float:
        return self._last_ping + self._watchdog_limit() - asyncio.get_running_loop().time()

    async def _handle(self, conn: Connection, raw: dict[str, Any]) -> None:
        seq_value = raw.get("seq")
        seq = seq_value if isinstance(seq_value, int) and not isinstance(seq_value, bool) else 0
        if 0 < seq <= self._last_seq:
            return  # already processed (replay overlapping what we had)
        replayed = 0 < seq <= self._replay_until
        event = parse_event(raw)
        if isinstance(event, Ping):
            self._last_ping = asyncio.get_running_loop().time()
            if self._answer_pings:
                await conn.send({"type": "pong", "nonce": event.nonce})
        self._log.append(event)
        self._process(event, replayed)
        if seq <= 0:
            return
        self._last_seq = seq
        if isinstance(event, Matched) and not self._ack_matched:
            self._acks_frozen = True
        if self._auto_ack and self._answer_pings and not self._acks_frozen:
            await conn.send({"type": "ack", "seq": seq})
        if self._replaying and seq >= self._replay_until:
            # Answers to commands sent before the drop came with the replay; whatever is
            # still unanswered may never have reached the server.
            self._replaying = False
            await self._resend_pending(conn)

    def _process(self, event: Event, replayed: bool) -> None:
        """Resolve a command future, or fold the event into the local state."""
        if isinstance(event, Matched):
            self._last_match_id = event.match_id
        if isinstance(event, (Reply, Error)) and event.re is not None:
            pending = self._pending.take(event.re)
            if pending is None or pending.future.done():
                return
            if isinstance(event, Reply):
                if not replayed:
                    self._state = apply_reply(self._state, pending.message, event)
                pending.future.set_result(event.payload)
            else:
                pending.future.set_exception(
                    CommandError(event.code, event.message, event.retry_after_ms, event.raw)
                )
        elif not replayed:
            self._state = apply_event(self._state, event)

    async def _resend_pending(self, conn: Connection) -> None:
        """Send every unanswered command not yet sent on this connection."""
        for pending in self._pending.not_sent_on(self._gen):
            await conn.send(pending.message)
            pending.gen = self._gen

    def _stop(self, lost: ConnectionLost | None) -> None:
        if self._stopped.is_set():
            return
        if lost is not None:
            log.warning("client %s stopped: %s", self._user_id, lost)
        self._lost = lost
        self._set_conn(None)
        self._log.finish(lost)
        self._pending.fail_all(lost or ConnectionLost(None, "client closed"))
        self._stopped.set()
