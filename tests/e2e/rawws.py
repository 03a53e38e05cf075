"""A bare protocol client for tests that need to send exactly the bytes they mean."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect


async def guest_token(base_url: str, name: str = "raw") -> str:
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.post("/v1/auth/guest", json={"display_name": name})
        response.raise_for_status()
        return str(response.json()["token"])


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/v1/ws"


class RawSession:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.welcome: dict[str, Any] = {}

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def next(self, kind: str | None = None, timeout: float = 5) -> dict[str, Any]:
        """The next message (of `kind`, skipping pings and others), acking as it goes."""
        async with asyncio.timeout(timeout):
            return await self._next(kind)

    async def _next(self, kind: str | None) -> dict[str, Any]:
        while True:
            message = json.loads(await _recv(self.ws))
            if "seq" in message:
                await self.ws.send(json.dumps({"type": "ack", "seq": message["seq"]}))
            if kind is None or message["type"] == kind:
                return dict(message)

    async def closed_code(self, timeout: float = 5) -> int | None:
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        return self.ws.close_code


async def _recv(ws: ClientConnection) -> str:
    data = await ws.recv()
    return data if isinstance(data, str) else data.decode()


@asynccontextmanager
async def raw_session(base_url: str, token: str | None = None) -> AsyncIterator[RawSession]:
    """A connection that has said hello; the welcome is in `.welcome`."""
    token = token or await guest_token(base_url)
    async with connect(ws_url(base_url), compression=None) as ws:
        session = RawSession(ws)
        await session.send({"type": "hello", "v": 1, "token": token})
        session.welcome = await session.next("welcome")
        yield session
