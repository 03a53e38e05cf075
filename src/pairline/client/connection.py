"""One WebSocket connection: the hello/welcome handshake, JSON framing, close codes.

It knows nothing of sessions, acks or reconnects; `Client` builds those on top.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .events import Welcome, parse_welcome

log = logging.getLogger("pairline.client")

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

# No close frame from the server: the socket died, or we aborted it ourselves.
ABNORMAL_CLOSURE = 1006


class HandshakeFailed(Exception):
    """The socket opened but no `welcome` came; `code` is the server's close code, if any."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def close_code_of(exc: ConnectionClosed) -> int:
    return exc.rcvd.code if exc.rcvd is not None else ABNORMAL_CLOSURE


class Connection:
    def __init__(self, ws: ClientConnection, url: str) -> None:
        self.ws = ws
        self.url = url

    @classmethod
    async def open(
        cls, url: str, hello: dict[str, Any], timeout_s: float
    ) -> tuple[Connection, Welcome]:
        """Connect, send `hello`, and wait for `welcome`.

        Raises OSError/TimeoutError/websockets errors when the socket cannot be opened, and
        HandshakeFailed when it opens but the server closes it or says something else.
        """
        ws = await connect(
            url,
            compression=None,
            max_size=2**20,
            open_timeout=timeout_s,
            # Liveness is the protocol's own ping/pong (§6); protocol-level pings from us
            # would also be traffic a deliberately silent test client must not send.
            ping_interval=None,
        )
        conn = cls(ws, url)
        try:
            return conn, await conn._handshake(hello, timeout_s)
        except BaseException:
            conn.abort()  # harmless if already closed; never leak a half-open socket
            raise

    async def _handshake(self, hello: dict[str, Any], timeout_s: float) -> Welcome:
        deadline = asyncio.get_running_loop().time() + timeout_s
        other: dict[str, Any] | None = None  # what came instead of welcome, for the message
        try:
            await self.send(hello)
            while True:
                raw = await self.recv(deadline - asyncio.get_running_loop().time())
                if raw is not None and raw["type"] == "welcome":
                    return parse_welcome(raw)
                # Typically an `error` for a bad hello; keep reading to learn the close code.
                other = other or raw
        except ConnectionClosed as exc:
            code = close_code_of(exc)
            message = f"closed with code {code} before welcome; got {other}"
            raise HandshakeFailed(message, code) from exc
        except TimeoutError as exc:
            raise HandshakeFailed(f"no welcome within {timeout_s} s; got {other}") from exc
        except msgspec.ValidationError as exc:
            raise HandshakeFailed(f"malformed welcome: {exc}") from exc

    async def send(self, message: dict[str, Any]) -> None:
        # Encoded to bytes but sent as a text frame: the protocol is JSON text frames.
        await self.ws.send(_encoder.encode(message), text=True)

    async def recv(self, timeout_s: float | None = None) -> dict[str, Any] | None:
        """The next message as a JSON object, or None for a frame that is not one.

        Raises ConnectionClosed when the connection ends, TimeoutError after `timeout_s`
        (cancelling a websockets `recv` loses nothing).
        """
        async with asyncio.timeout(timeout_s):
            data = await self.ws.recv(decode=False)
        try:
            value = _decoder.decode(data)
        except msgspec.DecodeError:
            log.warning("ignoring a frame that is not JSON: %.100r", data)
            return None
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            log.warning("ignoring a frame that is not a typed JSON object: %.100r", data)
            return None
        return value

    def abort(self) -> None:
        """Drop the TCP connection at once, without a close frame."""
        self.ws.transport.abort()

    async def close(self, code: int = 1000) -> None:
        await self.ws.close(code)
