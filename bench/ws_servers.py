"""Which WebSocket server path costs the least CPU per message: the candidates of issue 7.

    .venv/bin/pip install picows   # the `bench` extra: pip install -e '.[bench]'
    .venv/bin/python bench/ws_servers.py [--conns 500] [--messages 40] [--runs 3] [--json OUT]

Each candidate is a throwaway echo server of ~100-byte text messages, on uvloop, in a process of
its own; a picows client (C, so that the client is not the bottleneck) in another process opens
`--conns` connections and sends `--messages` messages on each, one at a time per connection (a
message, its echo, the next), all connections at once. The server's CPU (utime + stime from
/proc) over the sends, divided by the messages, is its cost per message received and echoed;
its RSS growth over the connections, per connection, its idle memory. Candidates:

- `native`: pairline's transport path: uvicorn's httptools protocol for the upgrade, then an
  asyncio protocol driving websockets' sans-I/O `ServerProtocol` (transport/native_ws.py);
- `asgi`: uvicorn + an ASGI app, uvicorn's `websockets-sansio` implementation;
- `aiohttp`: aiohttp's web server and its WebSocketResponse;
- `websockets`: the websockets library's own asyncio server;
- `picows`: picows' Cython server.
Per-message deflate is off everywhere. The medians over `--runs` are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

CANDIDATES = ("native", "asgi", "aiohttp", "websockets", "picows")
PAYLOAD = b'{"type":"chat","id":"c_000001","match_id":"m_1","text":"' + b"x" * 40 + b'"}'


# --- servers (run in a child process: `ws_servers.py --serve NAME PORT`) -------------------


def serve(name: str, port: int) -> None:
    import uvloop

    if name in ("native", "asgi"):
        _serve_uvicorn(name, port)
        return
    uvloop.run({"aiohttp": _aiohttp, "websockets": _websockets, "picows": _picows}[name](port))


class EchoProtocol(asyncio.Protocol):
    """The shape of pairline's NativeWebSocket, echoing instead of handing to a gateway."""

    def __init__(self, *_: Any, **__: Any) -> None:
        self.ws = ServerProtocol(max_size=1 << 20)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self.ws.send_response(self.ws.accept(event))
                event.headers.clear()
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.ws.send_text(event.data)
        chunks = self.ws.data_to_send()
        if self.transport is not None and chunks:
            self.transport.write(b"".join(chunks))
            if not chunks[-1]:  # the closing handshake is done
                self.transport.close()


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The same echo as an ASGI app."""
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", "text": message["text"]})


def _serve_uvicorn(name: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(
        echo_app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        ws=EchoProtocol if name == "native" else "websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="off",
        log_level="warning",
        access_log=False,
    )
    uvicorn.Server(config).run()


async def _aiohttp(port: int) -> None:
    from aiohttp import WSMsgType, web

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def _websockets(port: int) -> None:
    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as ws_serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with ws_serve(echo, "127.0.0.1", port, compression=None, ping_interval=None):
        await asyncio.Event().wait()


async def _picows(port: int) -> None:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

    class Echo(WSListener):
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                transport.send(WSMsgType.TEXT, frame.get_payload_as_bytes())
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    server = await ws_create_server(lambda _: Echo(), "127.0.0.1", port)
    await server.serve_forever()


# --- the client (this process) -----------------------------------------------------------


async def drive(url: str, conns: int, messages: int, pid: int) -> dict[str, float]:
    from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    class Sender(WSListener):
        def __init__(self) -> None:
            self.left = 0
            self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def start(self, transport: WSTransport, count: int) -> None:
            self.left = count
            transport.send(WSMsgType.TEXT, PAYLOAD)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type != WSMsgType.TEXT:
                return
            self.left -= 1
            if self.left:
                transport.send(WSMsgType.TEXT, PAYLOAD)
            elif not self.done.done():
                self.done.set_result(None)

    rss_before = _rss_kb(pid)
    clients: list[tuple[WSTransport, Sender]] = []
    for i in range(0, conns, 100):  # connect in waves: a listen backlog is not what is measured
        wave = await asyncio.gather(*(ws_connect(Sender, url) for _ in range(min(100, conns - i))))
        clients += [(transport, listener) for transport, listener in wave]  # type: ignore[misc]
    await asyncio.sleep(1)  # let the server settle before reading its memory
    rss_connected = _rss_kb(pid)
    cpu_before, wall_before = _cpu_s(pid), time.perf_counter()
    for transport, listener in clients:
        listener.start(transport, messages)
    await asyncio.gather(*(listener.done for _, listener in clients))
    cpu, wall = _cpu_s(pid) - cpu_before, time.perf_counter() - wall_before
    for transport, _ in clients:
        transport.send_close(WSCloseCode.OK)
    closing = [asyncio.ensure_future(transport.wait_disconnected()) for transport, _ in clients]
    await asyncio.wait(closing, timeout=5)
    for transport, _ in clients:
        transport.disconnect()
    sent = conns * messages
    return {
        "server_us_per_message": round(cpu * 1e6 / sent, 2),
        "messages_per_s": round(sent / wall),
        "server_kb_per_connection": round((rss_connected - rss_before) / conns, 2),
    }


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no server on {port}")


def measure(name: str, conns: int, messages: int) -> dict[str, float]:
    import uvloop

    port = _free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", name, str(port)])
    try:
        _wait_listening(port)
        url = f"ws://127.0.0.1:{port}/"
        return uvloop.run(drive(url, conns, messages, server.pid))
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conns", type=int, default=500)
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=CANDIDATES, default=list(CANDIDATES))
    parser.add_argument("--json")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    results: dict[str, dict[str, float]] = {}
    for name in args.only:
        runs = [measure(name, args.conns, args.messages) for _ in range(args.runs)]
        results[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(name, results[name], flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
