"""WebhookSender against a real receiver (Starlette under uvicorn on a free port)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pairline.webhooks import WebhookSender, verify_signature
from tests.localhttp import serving

SECRET = "webhook-secret"
FAST = (0.05, 0.1)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document


class Receiver:
    """Records every request. Each event's payload may carry `plan`: what to answer to its
    successive attempts ("500", "400", "429:<retry-after>", "hang"); then 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.accepted: list[Received] = []
        self.url = ""
        self._changed = asyncio.Condition()
        self._release = asyncio.Event()
        self._serving: contextlib.AbstractAsyncContextManager[str] | None = None

    def attempts(self, event_id: str) -> list[Received]:
        return [r for r in self.requests if r.headers["x-pairline-event-id"] == event_id]

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    async def _hook(self, request: Request) -> Response:
        received = Received(dict(request.headers), await request.body(), time.monotonic())
        event = received.event
        plan = event["data"].get("plan", [])
        tries = len(self.attempts(event["id"]))
        answer = plan[tries] if tries < len(plan) else "200"
        async with self._changed:
            self.requests.append(received)
            if answer == "200":
                self.accepted.append(received)
            self._changed.notify_all()
        if answer == "hang":
            await self._release.wait()
            return Response(status_code=200)
        status, _, retry_after = answer.partition(":")
        headers = {"Retry-After": retry_after} if retry_after else None
        return Response(status_code=int(status), headers=headers)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self._serving = serving(app)
        self.url = await self._serving.__aenter__() + "/hook"

    async def stop(self) -> None:
        self._release.set()
        if self._serving is not None:
            await self._serving.__aexit__(None, None, None)
            self._serving = None


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def make_sender(receiver: Receiver) -> AsyncIterator[Callable[..., WebhookSender]]:
    senders: list[WebhookSender] = []

    def make(**kwargs: Any) -> WebhookSender:
        options: dict[str, Any] = {"retries": FAST, "timeout_s": 2.0, **kwargs}
        sender = WebhookSender(options.pop("url", receiver.url), SECRET, **options)
        sender.start()
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.stop(timeout_s=0)


async def test_delivery_is_signed_and_shaped(
    receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    sender = make_sender()
    before_ms = int(time.time() * 1000)
    sender.submit("report.created", {"reporter": "g_1", "reason": "spam", "text": "héllo"})
    await asyncio.wait_for(sender.join(), 5)

    [received] = receiver.requests
    headers, event = received.headers, received.event
    assert headers["content-type"] == "application/json"
    assert headers["x-pairline-event-id"] == event["id"]
    assert event["type"] == "report.created"
    assert event["data"] == {"reporter": "g_1", "reason": "spam", "text": "héllo"}
    assert before_ms <= event["created_at"] <= int(time.time() * 1000)
    timestamp, sig = headers["x-pairline-timestamp"], headers["x-pairline-signature"]
    assert sig.startswith("sha256=")
    assert verify_signature(SECRET, timestamp, received.body, sig)
    assert not verify_signature("other-secret", timestamp, received.body, sig)
    assert not verify_signature(SECRET, timestamp, received.body + b" ", sig)
    assert not verify_signature(SECRET, int(timestamp) + 1, received.body, sig)
    assert not verify_signature(SECRET, timestamp, received.body, sig, now=int(timestamp) + 301)
    assert verify_signature(SECRET, timestamp, received.body, sig, now=int(timestamp) + 299)
    assert not verify_signature(SECRET, "soon", received.body, sig)
    assert not verify_signature(SECRET, timestamp, received.body, "sha256=é")
    assert sender.counters.delivered == 1 and sender.counters.retried == 0


async def test_server_errors_are_retried_then_delivered_once(
    receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    sender = make_sender(retries=(0.05, 0.05, 0.05))
    sender.submit("report.created", {"plan": ["500", "503", "408"]})
    await asyncio.wait_for(sender.join(), 5)

    assert len(receiver.requests) == 4 and len(receiver.accepted) == 1
    assert len({r.headers["x-pairline-event-id"] for r in receiver.requests}) == 1
    for received in receiver.requests:
        headers = received.headers
        sig = headers["x-pairline-signature"]
        assert verify_signature(SECRET, headers["x-pairline-timestamp"], received.body, sig)
    assert (sender.counters.delivered, sender.counters.retried, sender.counters.failed) == (1, 3, 0)


async def test_gives_up_after_the_last_retry(
    receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    sender = make_sender()
    sender.submit("report.created", {"plan": ["500", "500", "500"]})
    await asyncio.wait_for(sender.join(), 5)
    assert len(receiver.requests) == 3 and not receiver.accepted
    assert (sender.counters.failed, sender.counters.retried, sender.counters.delivered) == (1, 2, 0)


@pytest.mark.parametrize("status", ["400", "401", "404", "410", "422"])
async def test_client_errors_are_dropped_not_retried(
    status: str, receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    sender = make_sender()
    sender.submit("report.created", {"plan": [status]})
    await asyncio.wait_for(sender.join(), 5)
    assert len(receiver.requests) == 1
    assert (sender.counters.dropped, sender.counters.retried) == (1, 0)


async def test_a_hanging_receiver_times_out_and_is_retried(
    receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    sender = make_sender(timeout_s=0.5)
    sender.submit("report.created", {"plan": ["hang"]})
    await asyncio.wait_for(sender.join(), 5)
    assert len(receiver.requests) == 2 and len(receiver.accepted) == 1
    assert (sender.counters.delivered, sender.counters.retried) == (1, 1)


async def test_retry_after_is_honoured(
    receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    sender = make_sender(retries=(0.01,))
    sender.submit("report.created", {"plan": ["429:0.4"]})
    await asyncio.wait_for(sender.join(), 5)
    first, second = receiver.requests
    assert second.at - first.at >= 0.35
    assert sender.counters.delivered == 1


async def test_connection_errors_are_retried() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = WebhookSender(f"http://127.0.0.1:{port}/hook", SECRET, retries=(0.01, 0.01))
    sender.start()
    sender.submit("report.created", {})
    await asyncio.wait_for(sender.join(), 5)
    await sender.stop()
    assert (sender.counters.retried, sender.counters.failed) == (2, 1)


async def test_events_are_sent_concurrently(
    receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    sender = make_sender(timeout_s=5.0, concurrency=2)
    sender.submit("report.created", {"plan": ["hang"]})
    sender.submit("report.created", {"n": 2})
    # The second is delivered while the first still waits for its answer.
    await receiver.wait_until(lambda: len(receiver.accepted) == 1)
    assert receiver.accepted[0].event["data"] == {"n": 2}
    assert len(receiver.requests) == 2


async def test_an_event_waiting_to_retry_holds_up_no_other(
    receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    sender = make_sender(concurrency=1, retries=(1.0,))
    sender.submit("report.created", {"n": -1, "plan": ["500"]})
    for n in range(5):
        sender.submit("report.created", {"n": n})
    await asyncio.wait_for(sender.join(), 5)
    # With one worker, the five others all went out while the first waited for its retry.
    assert [r.event["data"]["n"] for r in receiver.requests] == [-1, 0, 1, 2, 3, 4, -1]
    assert (sender.counters.delivered, sender.counters.retried) == (6, 1)


async def test_stop_flushes_queued_events(receiver: Receiver) -> None:
    sender = WebhookSender(receiver.url, SECRET, retries=FAST)
    sender.start()
    for n in range(30):
        sender.submit("report.created", {"n": n, "plan": ["500"] if n % 3 == 0 else []})
    await sender.stop(timeout_s=5)
    assert sorted(r.event["data"]["n"] for r in receiver.accepted) == list(range(30))
    assert sender.counters.delivered == 30 and sender.pending == 0
    sender.submit("report.created", {})  # after stop: not queued
    assert sender.counters.dropped == 1


async def test_stop_gives_up_at_its_timeout(receiver: Receiver) -> None:
    sender = WebhookSender(receiver.url, SECRET, timeout_s=5.0)
    sender.start()
    sender.submit("report.created", {"plan": ["hang"]})
    await receiver.wait_until(lambda: len(receiver.requests) == 1)
    started = time.monotonic()
    await sender.stop(timeout_s=0.2)
    assert time.monotonic() - started < 2.0
    assert sender.counters.failed == 1 and sender.pending == 0


async def test_submit_never_blocks_and_a_full_queue_drops(receiver: Receiver) -> None:
    sender = WebhookSender(receiver.url, SECRET, max_queue=3)  # not started: nothing drains
    for n in range(5):
        sender.submit("report.created", {"n": n})
    assert sender.pending == 3 and sender.counters.dropped == 2
    with pytest.raises(TypeError):
        sender.submit("report.created", {"not_json": object()})
    assert sender.pending == 3
    sender.start()
    await asyncio.wait_for(sender.join(), 5)
    await sender.stop()
    assert sorted(r.event["data"]["n"] for r in receiver.accepted) == [0, 1, 2]
