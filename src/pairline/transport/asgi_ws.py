"""pairline's WebSocket endpoint over ASGI, for running the app under any ASGI server.

`pairline serve` answers the WebSocket path with `native_ws` instead (cheaper per message);
this adapter is the portable one, and the baseline the benchmark compares against.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect

from pairline.core.protocol import CloseCode
from pairline.transport.handler import ConnectionHandler

_CLOSE = object()


class _AsgiConnection:
    """Writes go through a queue to one writer task: ASGI sends are awaitable, ours are not."""

    def __init__(self) -> None:
        self.outbox: asyncio.Queue[bytes | tuple[int, str]] = asyncio.Queue()
        self.closing = False

    def send(self, data: bytes) -> None:
        if not self.closing:
            self.outbox.put_nowait(data)

    def close(self, code: int, reason: str = "") -> None:
        if not self.closing:
            self.closing = True
            self.outbox.put_nowait((code, reason))


async def _write(websocket: WebSocket, conn: _AsgiConnection) -> None:
    while True:
        item = await conn.outbox.get()
        if isinstance(item, tuple):
            await websocket.close(code=item[0], reason=item[1])
            return
        await websocket.send_text(item.decode())


async def websocket_endpoint(websocket: WebSocket) -> None:
    runtime = websocket.app.state.runtime
    await websocket.accept()
    conn = _AsgiConnection()
    peer = websocket.client.host if websocket.client else None
    handler = ConnectionHandler(runtime.gateway, conn, runtime.flood, peer)
    writer = asyncio.create_task(_write(websocket, conn))
    limit = runtime.settings.max_frame_bytes
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                conn.close(CloseCode.MALFORMED, "binary frames are not part of the protocol")
            elif len(text) > limit:
                conn.close(CloseCode.MALFORMED, "message too large")
            else:
                handler.received(text)
    except WebSocketDisconnect:
        pass
    finally:
        handler.closed()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
