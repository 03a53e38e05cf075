"""The SSE + HTTP fallback transport (protocol.md §1), for networks that block WebSocket.

Server → client is one `text/event-stream` per connection (`GET /v1/events`); client → server is
one `POST /v1/commands` per message. Underneath it is the WebSocket's machinery, unchanged: the
stream is the session's `Connection`, driven by a `ConnectionHandler` of its own, so seq, acks,
replay, resume, takeover (4409), heartbeats and stale removal (4408), and the flood limits (per
connection and per address, 4429) are the same code for both transports. What differs:

- the GET request is the hello: `?token=`, and `Last-Event-ID` (with `&session=` or, as a browser's
  own reconnect sends it, without) asks to resume after that seq;
- each message is one SSE event whose `id:` is its `seq` (the `welcome` has none), so a browser's
  automatic reconnect sends the right `Last-Event-ID` by itself;
- a POSTed body is one message of the stream's handler: in order with the others, counted against
  the stream's budget;
- closing sends a last `event: close` (data `{"code", "reason"}`, the WebSocket close code), which
  `EventSource.onmessage` does not see, and ends the response.

A POST must reach the node that holds the stream (docs/operations.md: sticky sessions).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import signal
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

from pairline.core.protocol import PROTOCOL_VERSION, CloseCode, Hello, encode
from pairline.transport.flood import FloodGuard
from pairline.transport.gateway import Gateway
from pairline.transport.handler import ConnectionHandler, Phase
from pairline.transport.session import Session

log = structlog.get_logger("pairline.sse")

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

# A comment line when nothing else was written for this long: proxies cut idle streams (nginx
# after 60 s by default), and the protocol's own pings may be further apart than that.
KEEPALIVE_S = 15.0
# `retry:` sent with the welcome: the browser's reconnect delay, the protocol's first backoff.
RETRY_MS = 1000
# How often open streams look for uvicorn's shutdown (see `_server_exiting`).
SHUTDOWN_POLL_S = 0.2

HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
    (b"connection", b"keep-alive"),
]

_SEQ_PREFIX = b'{"seq":'  # how `Session.push` starts every numbered message


class SseStream:
    """One open event stream: the session's `Connection` over SSE.

    `send` and `close` only queue bytes; `pump` writes them to the response as they come.
    """

    transport_name = "sse"  # for the connected-users gauge (metrics)
    __slots__ = (
        "_chunks",
        "_keepalive_s",
        "_wake",
        "close_code",
        "close_reason",
        "closing",
        "gone",
        "handler",
    )

    def __init__(self, keepalive_s: float = KEEPALIVE_S) -> None:
        self._chunks: list[bytes] = []
        self._wake = asyncio.Event()
        self._keepalive_s = keepalive_s
        self.closing = False  # the server closed it: the close event is the last one
        self.close_code: int | None = None
        self.close_reason = ""
        self.gone = False  # the client went away: nothing more can be written
        self.handler: ConnectionHandler | None = None

    # ------------------------------------------------------------------ Connection

    def send(self, data: bytes) -> None:
        if self.closing or self.gone:
            return  # the session keeps the message for a resume
        if data.startswith(_SEQ_PREFIX):
            end = data.index(b",", len(_SEQ_PREFIX))
            event = b"id: " + data[len(_SEQ_PREFIX) : end] + b"\ndata: " + data + b"\n\n"
        else:  # the welcome: it belongs to the connection, not to the session's stream
            event = b"retry: %d\ndata: " % RETRY_MS + data + b"\n\n"
        self._chunks.append(event)  # (JSON from msgspec holds no raw line breaks)
        self._wake.set()

    def close(self, code: int, reason: str = "") -> None:
        if self.closing or self.gone:
            return
        self.closing = True
        self.close_code = code
        self.close_reason = reason
        notice = encode({"code": code, "reason": reason})
        self._chunks.append(b"event: close\ndata: " + notice + b"\n\n")
        self._wake.set()

    # ------------------------------------------------------------------ the response

    async def pump(self, send: Send) -> None:
        """Write queued events until the stream closes (a keep-alive comment when idle)."""
        chunks = self._chunks
        while not self.gone:
            if not chunks and not self.closing:
                self._wake.clear()
                try:
                    async with asyncio.timeout(self._keepalive_s):
                        await self._wake.wait()
                except TimeoutError:
                    chunks.append(b": keep-alive\n\n")
                continue
            if chunks:
                body = b"".join(chunks)
                chunks.clear()
                await send({"type": "http.response.body", "body": body, "more_body": True})
            elif self.closing:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return

    async def watch_client(self, receive: Receive) -> None:
        """Wait for the client to go away (`http.disconnect`), then stop the pump."""
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        self._wake.set()


class Refused(enum.Enum):
    """Why a POSTed message was not taken."""

    NO_STREAM = "no_stream"  # the session has no open event stream on this node
    FLOOD = "flood"  # over the stream's message budget: the stream closes with 4429


class SseTransport:
    """This node's SSE side: opens streams (through the gateway, as hellos) and hands POSTed
    messages to the stream of their session."""

    def __init__(
        self, gateway: Gateway, flood: FloodGuard, keepalive_s: float = KEEPALIVE_S
    ) -> None:
        self.gateway = gateway
        self.flood = flood
        self.keepalive_s = keepalive_s
        self._streams: set[SseStream] = set()
        self._watcher: asyncio.Task[None] | None = None

    def resume_target(
        self, user_id: str, session_id: str | None, last_event_id: int | None
    ) -> str | None:
        """The session a stream request resumes: the one it names, else (a browser's own
        reconnect repeats the first URL, which names none) the user's session here."""
        if last_event_id is None:
            return session_id  # (a `resume` with last_seq 0: as over WebSocket)
        if session_id:
            return session_id
        session = self.gateway.registry.get(user_id)
        return session.session_id if session is not None else None

    async def open(
        self, token: str, resume: str | None, last_seq: int, peer: str | None
    ) -> SseStream:
        """Say the stream's hello. The stream is open (welcome and replay queued) unless it
        was refused: then `closing` is set, with the WebSocket close code in `close_code`."""
        stream = SseStream(self.keepalive_s)
        handler = ConnectionHandler(self.gateway, stream, self.flood, peer)
        stream.handler = handler
        hello = Hello(v=PROTOCOL_VERSION, token=token, resume=resume or None, last_seq=last_seq)
        try:
            session = await handler.open(hello)  # (a store failure closes it with 1013)
        except BaseException:
            handler.closed()
            raise
        if session is None:
            stream.close(CloseCode.BAD_HELLO, "refused")  # (no-op when already closed)
            handler.closed()
        return stream

    async def serve(self, stream: SseStream, receive: Receive, send: Send) -> None:
        """Run an open stream's response body to its end; the connection is then gone."""
        self._streams.add(stream)
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch_shutdown())
        watcher = asyncio.create_task(stream.watch_client(receive))
        try:
            await stream.pump(send)
        except OSError:
            pass  # the client went away mid-write
        finally:
            self._streams.discard(stream)
            if stream.handler is not None:
                stream.handler.closed()  # at once: the client may already be back
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    def post(self, session: Session, data: bytes) -> Refused | None:
        """One client message for the session's stream (already checked to be one valid
        message); None once taken, else why not."""
        stream = session.conn
        if not isinstance(stream, SseStream) or stream.closing or stream.gone:
            return Refused.NO_STREAM
        handler = stream.handler
        if handler is None or handler.session is not session or handler.phase is not Phase.OPEN:
            return Refused.NO_STREAM
        if handler.received(data):
            return None
        return Refused.FLOOD if stream.close_code == CloseCode.FLOOD else Refused.NO_STREAM

    # ------------------------------------------------------------------ shutdown

    async def _watch_shutdown(self) -> None:
        """While streams are open, watch for the server's shutdown: uvicorn waits for open
        responses to end before it shuts the app down, so streams must end themselves, after
        the same farewell a WebSocket gets (`queue_cancelled{shutdown}`, then 1012)."""
        try:
            while self._streams:
                await asyncio.sleep(SHUTDOWN_POLL_S)
                if _server_exiting():
                    await self.close_all()
                    return
        finally:
            self._watcher = None

    async def close_all(self) -> None:
        streams = [s for s in self._streams if not (s.closing or s.gone)]
        await asyncio.gather(*(self._farewell(s) for s in streams), return_exceptions=True)

    async def _farewell(self, stream: SseStream) -> None:
        handler = stream.handler
        try:
            if handler is not None and handler.session is not None:
                await self.gateway.farewell(handler.session)
        except Exception:
            log.exception("sse_farewell_failed")
        finally:
            stream.close(CloseCode.SERVICE_RESTART, "service restart")


def _server_exiting() -> bool:
    """Whether the uvicorn server running this process is shutting down. uvicorn's SIGTERM
    handler is a method of its `Server`, whose `should_exit` turns true at the signal; where
    that is not so (another server), False, and the app's own shutdown closes the streams."""
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return getattr(server, "should_exit", False) is True
