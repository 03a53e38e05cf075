"""pairline's WebSocket endpoint as a bare asyncio protocol, plugged into uvicorn.

uvicorn hands an upgrade request to its `ws_protocol_class`; this one speaks the protocol
straight to the gateway, with websockets' sans-I/O state machine for framing. It skips the ASGI
layer (a task and a queue per connection, a dict per message): under the churn benchmark the
whole server spends about 1.2x less CPU per match and holds about 3.5x less memory per idle
connection than through uvicorn's ASGI WebSocket (docs/benchmarks.md). Plain HTTP stays on the
Starlette app on the same port.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from pairline.core.protocol import CloseCode
from pairline.transport.flood import FloodGuard
from pairline.transport.gateway import Gateway
from pairline.transport.handler import ConnectionHandler
from pairline.transport.session import Session

WS_PATH = "/v1/ws"
CLOSE_TIMEOUT_S = 5.0
_logger = logging.getLogger("pairline.ws")


class NativeWebSocket(asyncio.Protocol):
    """One WebSocket connection; implements the session's `Connection`."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], **_: Any) -> None:
        runtime = app_state.get("pairline")
        self.gateway: Gateway | None = runtime.gateway if runtime is not None else None
        self.flood: FloodGuard | None = runtime.flood if runtime is not None else None
        self.max_frame_bytes: int = runtime.settings.max_frame_bytes if runtime else 65536
        self.connections: set[Any] = server_state.connections
        # Frames up to 4x the limit are read (then refused with 4400); larger ones fail at once.
        self.ws = ServerProtocol(max_size=4 * self.max_frame_bytes, logger=_logger)
        self.transport: asyncio.Transport | None = None
        self.handler: ConnectionHandler | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._farewell: asyncio.Task[None] | None = None
        self._flush_soon = False  # frames wait to leave together at the end of this loop pass

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame):
                self._frame(event)
        self._flush()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        if self._close_timer is not None:
            self._close_timer.cancel()
        if self.handler is not None:
            self.handler.closed()

    def shutdown(self) -> None:
        """uvicorn is stopping (before the app's own shutdown): say goodbye, then close."""
        session = self.handler.session if self.handler is not None else None
        if self.gateway is None or session is None:
            self.close(1012, "service restart")
            return
        self._farewell = asyncio.get_running_loop().create_task(self._say_farewell(session))

    async def _say_farewell(self, session: Session) -> None:
        try:
            if self.gateway is not None:
                await self.gateway.farewell(session)
        finally:
            self.close(1012, "service restart")

    # ------------------------------------------------------------------ Connection

    def send(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        try:
            self.ws.send_text(data)
        except Exception:  # closing or closed: the session keeps the message for resume
            return
        # One write for every frame a pass of the event loop makes for this connection (a
        # transition often sends a user several): one system call instead of one per frame.
        if not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def close(self, code: int, reason: str = "") -> None:
        if self.transport is None or self.transport.is_closing():
            return
        try:
            self.ws.send_close(code, reason)
        except Exception:
            self.transport.close()
            return
        self._flush()
        loop = asyncio.get_running_loop()
        self._close_timer = loop.call_later(CLOSE_TIMEOUT_S, self.transport.abort)

    # ------------------------------------------------------------------ internals

    def _handshake(self, request: Request) -> None:
        path = request.path.split("?", 1)[0]
        if self.gateway is None:
            response = self.ws.reject(503, "pairline is not running\n")
        elif path != WS_PATH:
            response = self.ws.reject(404, f"no WebSocket endpoint at {path}\n")
        else:
            response = self.ws.accept(request)
        self.ws.send_response(response)
        # The protocol's parser keeps the request for the connection's life: its headers, some
        # 2 KB per connection, are needed no more.
        request.headers.clear()
        if response.status_code == 101 and self.gateway is not None and self.flood is not None:
            peer = self.transport.get_extra_info("peername") if self.transport else None
            address = peer[0] if isinstance(peer, tuple) and peer else None
            self.handler = ConnectionHandler(self.gateway, self, self.flood, address)

    def _frame(self, frame: Frame) -> None:
        if self.handler is None:
            return
        if frame.opcode is Opcode.TEXT:
            if not frame.fin:
                self.close(CloseCode.MALFORMED, "fragmented messages are not supported")
            elif len(frame.data) > self.max_frame_bytes:
                self.close(CloseCode.MALFORMED, "message too large")
            else:
                self.handler.received(bytes(frame.data))
        elif frame.opcode is Opcode.BINARY:
            self.close(CloseCode.MALFORMED, "binary frames are not part of the protocol")
        elif frame.opcode is Opcode.CONT:
            self.close(CloseCode.MALFORMED, "fragmented messages are not supported")

    def _flush(self) -> None:
        self._flush_soon = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        chunks = self.ws.data_to_send()
        if not chunks:
            return
        done = not chunks[-1]  # an empty chunk: the protocol is done with the connection
        transport.write(b"".join(chunks))
        if done:
            transport.close()
            return
        if self.ws.close_expected() and self._close_timer is None and not transport.is_closing():
            loop = asyncio.get_running_loop()
            self._close_timer = loop.call_later(CLOSE_TIMEOUT_S, transport.abort)
