"""A small client of the SSE + HTTP fallback for the tests: reads `GET /v1/events` with httpx,
parses its `id:` / `event:` / `data:` / `retry:` lines, and POSTs messages to `/v1/commands`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

STREAM_TIMEOUT = httpx.Timeout(10.0, read=None)  # a stream may be quiet for a while


@dataclass
class SseEvent:
    """One dispatched SSE event, as an EventSource would see it."""

    data: str
    event: str = "message"
    id: str | None = None  # the `id:` of this event's own block (None: it had none)
    retry: int | None = None

    def json(self) -> dict[str, Any]:
        value = json.loads(self.data)
        assert isinstance(value, dict)
        return value


async def parse_events(lines: AsyncIterator[str]) -> AsyncIterator[SseEvent | str]:
    """The events of an event stream, and its comment lines (as str, without the colon)."""
    data: list[str] = []
    event = ""
    event_id: str | None = None
    retry: int | None = None
    async for line in lines:
        if not line:
            if data:
                yield SseEvent("\n".join(data), event or "message", event_id, retry)
            data, event, event_id, retry = [], "", None, None
            continue
        if line.startswith(":"):
            yield line[1:].strip()
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            event_id = value
        elif name == "retry" and value.isdecimal():
            retry = int(value)


class SseClient:
    """One user over SSE. `messages` collects every protocol message read from the stream (the
    welcome excluded); `next` hands them out in order, acking each as it goes (unless
    `auto_ack` is off). Pings are answered at once unless `answer_pings` is off."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        auto_ack: bool = True,
        answer_pings: bool = True,
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.auto_ack = auto_ack
        self.answer_pings = answer_pings
        self.http = httpx.AsyncClient(base_url=base_url, timeout=STREAM_TIMEOUT)
        self.response: httpx.Response | None = None
        self.headers: httpx.Headers | None = None
        self.welcome: dict[str, Any] = {}
        self.first_event: SseEvent | None = None
        self.session: str | None = None
        self.last_event_id: str | None = None  # as EventSource keeps it: across events
        self.events: list[SseEvent] = []  # every event of the current stream, welcome first
        self.comments: list[str] = []
        self.background_statuses: list[int] = []  # of the POSTs the client made on its own
        self.close_notice: dict[str, Any] | None = None  # the `event: close` data, if any
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._backlog: deque[dict[str, Any]] = deque()  # read (and acked) but not handed out
        self._welcomed: asyncio.Future[dict[str, Any]] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stream_cm: Any = None
        self.ended = asyncio.Event()  # the current stream is over

    # ---- the stream ----------------------------------------------------------------

    async def connect(
        self, *, session: str | None = None, last_event_id: str | int | None = None
    ) -> dict[str, Any]:
        """Open the stream (resuming when given a Last-Event-ID); return the welcome."""
        await self.drop()
        params = {"token": self.token}
        if session is not None:
            params["session"] = session
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.events, self.comments, self.close_notice = [], [], None
        self.ended = asyncio.Event()
        self._queue, self._backlog = asyncio.Queue(), deque()  # a new stream starts afresh
        self._stream_cm = self.http.stream("GET", "/v1/events", params=params, headers=headers)
        response = await self._stream_cm.__aenter__()
        self.response, self.headers = response, response.headers
        if response.status_code != 200:
            body = await response.aread()
            await self.drop()
            raise StreamRefused(response.status_code, json.loads(body))
        self._welcomed = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(response))
        async with asyncio.timeout(5):
            self.welcome = await self._welcomed
        self.session = self.welcome["session"]
        return self.welcome

    async def reconnect(self) -> dict[str, Any]:
        """What a browser's EventSource does after a dropped stream: the same URL, with the
        last event id it saw as `Last-Event-ID`."""
        return await self.connect(last_event_id=self.last_event_id)

    async def drop(self) -> None:
        """Close the stream from this side (the session lives on, as after a dropped socket)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        cm, self._stream_cm = self._stream_cm, None
        if cm is not None:
            await cm.__aexit__(None, None, None)
        self.response = None

    async def close(self) -> None:
        await self.drop()
        await self.http.aclose()

    async def __aenter__(self) -> SseClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read(self, response: httpx.Response) -> None:
        try:
            async for item in parse_events(response.aiter_lines()):
                if isinstance(item, str):
                    self.comments.append(item)
                    continue
                self.events.append(item)
                if item.id is not None:
                    self.last_event_id = item.id
                if item.event == "close":
                    self.close_notice = item.json()
                    continue
                message = item.json()
                if message["type"] == "welcome":
                    self.first_event = self.first_event or item
                    if self._welcomed is not None and not self._welcomed.done():
                        self._welcomed.set_result(message)
                    continue
                if message["type"] == "ping" and self.answer_pings:
                    pong = await self.post({"type": "pong", "nonce": message["nonce"]})
                    self.background_statuses.append(pong.status_code)
                self._queue.put_nowait(message)
        except httpx.HTTPError:
            pass  # the stream broke off
        finally:
            self.ended.set()

    # ---- messages ------------------------------------------------------------------

    async def next(self, kind: str | None = None, timeout: float = 5) -> dict[str, Any]:
        """The next message (of `kind`, passing over others), acking as it goes."""
        async with asyncio.timeout(timeout):
            while True:
                if self._backlog:
                    message = self._backlog.popleft()
                else:
                    message = await self._queue.get()
                    if self.auto_ack and "seq" in message:
                        await self.ack(message["seq"])
                if kind is None or message["type"] == kind:
                    return message

    def freeze(self) -> None:
        """Stop sending anything on its own (pongs, acks), as a hung page would."""
        self.answer_pings = self.auto_ack = False

    async def ack(self, seq: int) -> None:
        response = await self.post({"type": "ack", "seq": seq})
        assert response.status_code == 202, response.text

    async def post(
        self,
        message: dict[str, Any] | bytes | str,
        *,
        token: str | None = None,
        session: str | None = None,
    ) -> httpx.Response:
        """POST one message (as JSON, or the exact bytes given) with this client's token and
        session, unless others are given."""
        body = message if isinstance(message, bytes | str) else json.dumps(message)
        token = token if token is not None else self.token
        session = session if session is not None else self.session
        headers = {"Content-Type": "application/json"}
        if token:  # (an empty one: no header at all)
            headers["Authorization"] = f"Bearer {token}"
        if session:
            headers["X-Pairline-Session"] = session
        return await self.http.post("/v1/commands", content=body, headers=headers)

    async def command(self, type_: str, id: str, **fields: Any) -> dict[str, Any]:
        """Send a command and return its answer (`reply` or `error`) from the stream."""
        response = await self.post({"type": type_, "id": id, **fields})
        assert response.status_code == 202, (response.text, self.close_notice)
        assert response.json() == {"ok": True}
        passed: list[dict[str, Any]] = []
        try:
            while True:
                message = await self.next()
                if message["type"] in ("reply", "error") and message.get("re") == id:
                    return message
                passed.append(message)
        finally:
            self._backlog.extendleft(reversed(passed))  # for `next`, in their order

    async def wait_ended(self, timeout: float = 5) -> dict[str, Any] | None:
        """Wait for the server to end the stream; its close notice."""
        await asyncio.wait_for(self.ended.wait(), timeout)
        return self.close_notice


class StreamRefused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
