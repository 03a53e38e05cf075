"""Signed, retried webhooks: events (e.g. user reports) POSTed as JSON to the operator's URL.

`submit` only enqueues; background workers deliver, at most `concurrency` requests at a time.
An event waiting for its next retry holds no worker, so one failing event never stalls others.
Delivery is at least once: receivers deduplicate on `X-Pairline-Event-Id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import structlog

log = structlog.get_logger("pairline.webhooks")

SIGNATURE_PREFIX = "sha256="
# Besides 5xx: "request timeout" and "too many requests" are worth another try.
RETRYABLE_STATUSES = frozenset({408, 429})
# A receiver's Retry-After is honoured up to this; beyond, it is a misconfiguration.
MAX_RETRY_AFTER_S = 300.0

Outcome = Literal["delivered", "failed", "dropped"]


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Pairline-Signature` value: HMAC-SHA256 over "{timestamp}.{body}"."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes,
    header: str,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """For receivers: the signature matches and the timestamp is within `tolerance_s` of `now`
    (default: the current time), which stops replays of old deliveries."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_s:
        return False
    expected = signature(secret, str(timestamp), body)
    return hmac.compare_digest(expected.encode(), header.encode())


@dataclass(slots=True)
class WebhookCounters:
    delivered: int = 0
    # Retries scheduled (one event may count several times).
    retried: int = 0
    # Given up after the last retry, or still pending when stop() ran out of time.
    failed: int = 0
    # Refused by the receiver (a 4xx), or never queued (queue full, sender stopped).
    dropped: int = 0


@dataclass(slots=True)
class _Event:
    id: str
    type: str
    body: bytes
    attempts: int = 0


class WebhookSender:
    """Delivers events to one URL: `start()`, then `submit(...)` from anywhere on the loop,
    then `await stop(...)` at shutdown."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float = 5.0,
        retries: Sequence[float] = (1, 2, 4, 8, 16, 30),
        max_queue: int = 10_000,
        concurrency: int = 8,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if max_queue < 1 or concurrency < 1:
            raise ValueError("max_queue and concurrency must be at least 1")
        self._url = url
        self._secret = secret
        self._timeout_s = timeout_s
        self._retries = tuple(retries)
        self._max_queue = max_queue
        self._concurrency = concurrency
        self._http = http
        self._owns_http = http is None
        self.counters = WebhookCounters()
        self._ready: asyncio.Queue[_Event] = asyncio.Queue()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._workers: list[asyncio.Task[None]] = []
        # Events submitted and not yet delivered, failed or dropped: queued, sending or waiting.
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True

    @property
    def pending(self) -> int:
        return self._pending

    def start(self) -> None:
        if self._workers:
            raise RuntimeError("WebhookSender already started")
        if self._http is None:
            limits = httpx.Limits(max_connections=self._concurrency)
            self._http = httpx.AsyncClient(timeout=self._timeout_s, limits=limits)
        self._workers = [
            asyncio.create_task(self._work(), name=f"webhook-worker-{i}")
            for i in range(self._concurrency)
        ]

    def submit(self, event_type: str, payload: Mapping[str, Any]) -> None:
        """Queue an event and return at once. A payload that is not JSON raises here, at the
        caller's bug; a full queue or a stopped sender drops the event (logged, counted)."""
        event_id = str(uuid.uuid4())
        document = {
            "id": event_id,
            "type": event_type,
            "created_at": int(time.time() * 1000),
            "data": payload,
        }
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        if not self._accepting or self._pending >= self._max_queue:
            self.counters.dropped += 1
            reason = "stopped" if not self._accepting else "queue_full"
            log.warning("webhook_not_queued", type=event_type, reason=reason)
            return
        self._pending += 1
        self._idle.clear()
        self._ready.put_nowait(_Event(event_id, event_type, body.encode()))

    async def join(self) -> None:
        """Wait until every submitted event is delivered, failed or dropped."""
        await self._idle.wait()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Refuse new events, give queued ones (retries included) up to `timeout_s` to finish,
        then abandon the rest (counted as failed)."""
        self._accepting = False
        if self._pending:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout_s)
            except TimeoutError:
                log.error("webhooks_abandoned", count=self._pending, url=self._url)
                self.counters.failed += self._pending
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        for timer in self._timers.values():
            timer.cancel()
        self._workers, self._timers = [], {}
        self._ready = asyncio.Queue()
        self._pending = 0
        self._idle.set()
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _work(self) -> None:
        while True:
            event = await self._ready.get()
            try:
                await self._attempt(event)
            except Exception:
                # Not a delivery problem but a bug (e.g. an invalid URL): give up on the event.
                log.exception("webhook_error", event_id=event.id, type=event.type)
                self._finish(event, "failed")

    async def _attempt(self, event: _Event) -> None:
        assert self._http is not None
        event.attempts += 1
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "pairline-webhooks",
            "X-Pairline-Event-Id": event.id,
            "X-Pairline-Timestamp": timestamp,
            "X-Pairline-Signature": signature(self._secret, timestamp, event.body),
        }
        try:
            # The client's timeouts are per read; this bounds a receiver that trickles bytes.
            async with asyncio.timeout(self._timeout_s):
                response = await self._http.post(self._url, content=event.body, headers=headers)
        except (httpx.TransportError, TimeoutError) as exc:
            self._retry_or_fail(event, repr(exc), None)
            return
        status = response.status_code
        if 200 <= status < 300:
            self._finish(event, "delivered")
        elif status >= 500 or status in RETRYABLE_STATUSES:
            retry_after = _seconds(response.headers.get("Retry-After"))
            self._retry_or_fail(event, f"HTTP {status}", retry_after)
        else:
            log.warning("webhook_refused", event_id=event.id, type=event.type, status=status)
            self._finish(event, "dropped")

    def _retry_or_fail(self, event: _Event, error: str, retry_after: float | None) -> None:
        if event.attempts > len(self._retries):
            log.error(
                "webhook_failed",
                event_id=event.id,
                type=event.type,
                attempts=event.attempts,
                error=error,
            )
            self._finish(event, "failed")
            return
        delay = self._retries[event.attempts - 1]
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
        self.counters.retried += 1
        log.info(
            "webhook_retry", event_id=event.id, attempt=event.attempts, delay_s=delay, error=error
        )
        self._timers[event.id] = asyncio.get_running_loop().call_later(delay, self._requeue, event)

    def _requeue(self, event: _Event) -> None:
        self._timers.pop(event.id, None)
        self._ready.put_nowait(event)

    def _finish(self, event: _Event, outcome: Outcome) -> None:
        if outcome == "delivered":
            self.counters.delivered += 1
        elif outcome == "failed":
            self.counters.failed += 1
        else:
            self.counters.dropped += 1
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()


def _seconds(retry_after: str | None) -> float | None:
    """A numeric Retry-After; None for an absent one or an HTTP date (not honoured)."""
    if retry_after is None:
        return None
    try:
        seconds = float(retry_after)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
