"""The load-generator side of bench/matchmaking.py: one worker process, many raw-protocol users.

Each user is a minimal protocol.md client, not the SDK (whose per-message bookkeeping would cost
more CPU than the server work being measured): a guest token by a bare HTTP/1.1 POST, `hello`,
then one reader task that acks every message at once, answers `ping`, and drives the churn model
from timers. Everything a user sees is appended to the worker's list as
`(t, user_id, kind, match_id, extra)` with t = time.time(), so that the parent process can
correlate events across workers; it does all the analysis.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import traceback
from collections import Counter
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Record = tuple[float, str, str, str, Any]  # (t, user_id, kind, match_id, extra)

# WebSocket frames of this worker's users after hello: "rx" server -> client, "tx" client -> server.
FRAMES: Counter[str] = Counter()

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class User:
    """One simulated user; with churn=False (burst mode) it stays in its first call.

    With `chat_interval` > 0 it also sends a `chat` to its partner every `chat_interval` s of a
    call (the first at a uniform random point of the first interval).
    """

    def __init__(
        self,
        name: str,
        rng: random.Random,
        log: list[Record],
        churn: bool,
        chat_interval: float = 0.0,
    ) -> None:
        self.name, self.rng, self.log, self.churn = name, rng, log, churn
        self.chat_interval = chat_interval
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.user_id = ""
        self.ids = itertools.count(1)
        self.pending: dict[str, str] = {}  # command id -> command type
        self.call: str | None = None  # the confirmed match we are in
        self.proposed: str | None = None
        self.timer: asyncio.TimerHandle | None = None  # end of the current "talk"
        self.wait_start: float | None = None  # when the current wait for a match began
        self.wait_provisional = False  # wait_start is a skip's send time, awaiting its reply
        self.confirmed = asyncio.Event()  # at least once (burst mode waits for this)
        self.stopping = False  # window over: no new commands, no acks of new `matched`
        self.acks_frozen = False
        self.closing = False

    # ---- connection ------------------------------------------------------------------

    async def connect(self, base: str) -> None:
        token = await guest_token(base, self.name)
        hello = {"type": "hello", "v": 1, "token": token, "last_seq": 0}
        ws_base = base.replace("http", "ws", 1)  # http -> ws, https -> wss
        self.ws = await connect(
            f"{ws_base}/v1/ws", compression=None, ping_interval=None, open_timeout=30, proxy=None
        )
        await self.ws.send(_encode(hello), text=True)
        welcome = _decode(await asyncio.wait_for(self.ws.recv(decode=False), 30))
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"expected welcome, got {welcome}")
        self.user_id = welcome["user_id"]
        self.reader = asyncio.get_running_loop().create_task(self.read_loop())

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        if self.reader is not None:
            self.reader.cancel()

    async def read_loop(self) -> None:
        assert self.ws is not None
        try:
            while True:
                data = await self.ws.recv(decode=False)
                FRAMES["rx"] += 1
                await self.on_message(_decode(data))
        except ConnectionClosed as exc:
            if not self.closing:
                self.record("dropped", "", exc.rcvd.code if exc.rcvd is not None else 1006)
        except Exception:  # a generator bug must show, not leave a user silently idle
            self.record("crash", "", traceback.format_exc(limit=3))

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(_encode(message), text=True)
            FRAMES["tx"] += 1

    def record(self, kind: str, match_id: str, extra: Any = None) -> None:
        self.log.append((time.time(), self.user_id, kind, match_id, extra))

    # ---- commands and timers -----------------------------------------------------------

    async def command(self, type_: str, **fields: Any) -> None:
        cid = str(next(self.ids))
        self.pending[cid] = type_
        self.record(f"{type_}_sent", fields.get("match_id", ""))
        await self.send({"type": type_, "id": cid, **fields})

    async def join(self) -> None:
        if not self.stopping and self.call is None:
            self.wait_start, self.wait_provisional = time.time(), False
            await self.command("join")

    async def hang_up(self, match_id: str) -> None:
        """End of a "talk": skip (both re-queued) or end (re-join after a pause)."""
        if self.stopping or self.call != match_id:
            return
        self.call = None
        if self.rng.random() < 0.5:
            self.wait_start, self.wait_provisional = time.time(), True
            await self.command("skip", match_id=match_id)
        else:
            await self.command("end", match_id=match_id)

    def later(
        self, delay: float, action: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> asyncio.TimerHandle:
        loop = asyncio.get_running_loop()
        return loop.call_later(delay, lambda: loop.create_task(action(*args)))

    async def chat(self, match_id: str) -> None:
        """One `chat` to the partner while the call lasts, then the next one later."""
        if self.stopping or self.call != match_id:
            return
        self.record("chat_sent", match_id)
        await self.send({"type": "chat", "match_id": match_id, "text": "hello"})
        self.later(self.chat_interval, self.chat, match_id)

    def rejoin_later(self, delay: float | None = None) -> None:
        self.later(self.rng.uniform(0.1, 0.5) if delay is None else delay, self.join)

    # ---- incoming ----------------------------------------------------------------------

    async def on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type", "")
        if kind == "matched" and self.stopping:
            self.acks_frozen = True  # acks are cumulative: this one and all later stay unacked
        if "seq" in msg and not self.acks_frozen:
            await self.send({"type": "ack", "seq": msg["seq"]})
        handler = getattr(self, f"on_{kind}", None)
        if handler is not None:
            await handler(msg)

    async def on_reply(self, msg: dict[str, Any]) -> None:
        type_ = self.pending.pop(msg.get("re", ""), "")
        if type_ == "skip":
            if msg.get("cooldown_ms"):  # the skip that reached the limit: not re-queued
                self.rejoin_later(msg["cooldown_ms"] / 1000)
            elif self.wait_provisional:  # re-queued as of this reply
                self.wait_start, self.wait_provisional = time.time(), False
        elif type_ == "end":
            self.proposed = None  # a late end also withdrew a proposal that followed
            self.rejoin_later()

    async def on_error(self, msg: dict[str, Any]) -> None:
        # A late skip/end gets invalid_state once a newer proposal exists; it changed nothing.
        type_ = self.pending.pop(msg.get("re", ""), "")
        self.record("error", "", f"{type_}:{msg.get('code')}")
        if msg.get("code") == "cooldown":
            self.rejoin_later(msg.get("retry_after_ms", 1000) / 1000)

    async def on_matched(self, msg: dict[str, Any]) -> None:
        self.proposed, self.wait_provisional = msg["match_id"], False
        self.record("matched", msg["match_id"], msg["partner"]["user_id"])

    async def on_match_confirmed(self, msg: dict[str, Any]) -> None:
        match_id = msg["match_id"]
        if self.call is not None:
            self.record("overlap", match_id, self.call)
        wait = time.time() - self.wait_start if self.wait_start is not None else None
        self.record("confirmed", match_id, wait)
        self.call, self.proposed, self.wait_start = match_id, None, None
        self.confirmed.set()
        if self.churn and not self.stopping:
            self.timer = self.later(self.rng.uniform(0.5, 2.0), self.hang_up, match_id)
        if self.chat_interval > 0 and not self.stopping:
            self.later(self.rng.uniform(0, self.chat_interval), self.chat, match_id)

    async def on_match_cancelled(self, msg: dict[str, Any]) -> None:
        self.proposed = None
        self.record("cancelled", msg.get("match_id", ""), msg.get("reason"))
        if not msg.get("requeued"):
            self.rejoin_later()  # if re-queued, the wait goes on from its old start

    async def on_partner_left(self, msg: dict[str, Any]) -> None:
        match_id = msg.get("match_id", "")
        self.record("left", match_id, msg.get("reason"))
        if self.call == match_id:
            self.call = None
            if self.timer is not None:
                self.timer.cancel()
        if not msg.get("requeued"):
            self.rejoin_later()
        elif self.call is None and self.proposed is None:
            # Re-queued now (also when our own skip/end crossed this message).
            self.wait_start, self.wait_provisional = time.time(), False

    async def on_queue_cancelled(self, msg: dict[str, Any]) -> None:
        self.record("queue_cancelled", "", msg.get("reason"))
        self.rejoin_later()

    async def on_ping(self, msg: dict[str, Any]) -> None:
        self.record("ping", "")
        await self.send({"type": "pong", "nonce": msg.get("nonce")})

    async def on_chat(self, msg: dict[str, Any]) -> None:
        self.record("chat", msg.get("match_id", ""))


# ---- one worker process -------------------------------------------------------------------


async def _sleep_until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - time.time()))


async def _watch_lag(lags: list[tuple[float, float]], period: float = 0.05) -> None:
    """How late this process's event loop wakes up: generator-side delay in every latency."""
    while True:
        before = time.time()
        await asyncio.sleep(period)
        lags.append((time.time(), time.time() - before - period))


async def guest_token(base: str, name: str) -> str:
    """POST /v1/auth/guest over a bare socket: httpx's pool costs ~10 ms CPU a request here."""
    url = urlsplit(base)
    port = url.port or (443 if url.scheme == "https" else 80)
    reader, writer = await asyncio.open_connection(url.hostname, port, ssl=url.scheme == "https")
    body = _encode({"display_name": name})
    head = f"POST /v1/auth/guest HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n"
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    response = await asyncio.wait_for(reader.read(), 30)  # the server closes after it
    writer.close()
    status, _, payload = response.partition(b"\r\n\r\n")
    if not status.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"guest login failed: {response[:200]!r}")
    token: str = _decode(payload)["token"]
    return token


def node_urls(urls: list[str], first: int, count: int) -> list[str]:
    """Round-robin over the nodes by the users' global index (`first` is this worker's first)."""
    return [urls[(first + i) % len(urls)] for i in range(count)]


async def _connect_all(users: list[User], bases: list[str]) -> list[User]:
    """Connect every user to its own node (`bases[i]` for `users[i]`), 64 at a time."""
    gate = asyncio.Semaphore(64)

    async def one(user: User, base: str) -> bool:
        async with gate:
            try:
                await user.connect(base)
                return True
            except Exception as exc:
                user.record("connect_failed", "", repr(exc))
                return False

    ok = await asyncio.gather(*(one(u, b) for u, b in zip(users, bases, strict=True)))
    return [u for u, good in zip(users, ok, strict=True) if good]


async def _run(plan: dict[str, Any], pipe: Connection) -> None:
    """Connect, report, get the schedule, join, run the window, drain, close, send the log."""
    loop = asyncio.get_running_loop()
    log: list[Record] = []
    rng = random.Random(plan["seed"] * 1000 + plan["index"])
    churn = not plan["burst"]
    names = [f"bench-{plan['index']}-{i}" for i in range(plan["users"])]
    chat = float(plan.get("chat_interval") or 0.0)
    users = [User(n, random.Random(rng.random()), log, churn, chat) for n in names]
    live = await _connect_all(users, node_urls(plan["urls"], plan["first"], len(users)))
    pipe.send(("connected", len(live)))
    sched: dict[str, float] = await loop.run_in_executor(None, pipe.recv)
    lags: list[tuple[float, float]] = []
    watcher = loop.create_task(_watch_lag(lags))
    await _sleep_until(sched["t_join"])
    cpu0, frames0 = time.process_time(), FRAMES.copy()
    if not plan.get("idle"):
        await asyncio.gather(*(u.join() for u in live))
    if plan["burst"] and live:
        waits = [loop.create_task(u.confirmed.wait()) for u in live]
        _, late = await asyncio.wait(waits, timeout=max(0.0, sched["t1"] - time.time()))
        for task in late:
            task.cancel()
    elif not plan["burst"]:
        await _sleep_until(sched["t0"])
        cpu0, frames0 = time.process_time(), FRAMES.copy()
        await _sleep_until(sched["t1"])
    cpu1, frames = time.process_time(), FRAMES - frames0
    for user in live:
        user.stopping = True
    pipe.send(("settled", time.time()))
    await asyncio.sleep(plan["grace"])
    watcher.cancel()
    await asyncio.gather(*(u.close() for u in live))
    result = {"log": log, "lags": lags, "cpu_window": cpu1 - cpu0, "frames": dict(frames)}
    pipe.send(("result", result))


def worker_main(plan: dict[str, Any], pipe: Connection) -> None:
    """Entry point of one worker process (multiprocessing target), on uvloop if present."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(_run(plan, pipe))
    else:
        uvloop.run(_run(plan, pipe))
