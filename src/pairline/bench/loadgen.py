"""The load generator of `pairline bench`: one worker process, many lean raw-protocol users.

Each user is a minimal protocol.md client, not the SDK (whose per-message bookkeeping would cost
more CPU than the server work being measured): a guest token by a bare HTTP/1.1 POST, a
`websockets` connection with `compression=None`, `hello`, then one reader task that acks every
message at once, answers `ping`, ignores a `seq` it already processed, and drives the churn model
(model.py) from timers. A dropped connection (the model's own drops, and any close the protocol
says to come back from) is resumed with `hello{resume, last_seq}`, and every command still
unanswered is sent again under its own id. Everything a user sees or does is
appended to the worker's log (log.py); the parent process does all the analysis.

With --mass-skip, users do not churn: at each barrier (everyone in a new call) the worker tells
the driver how many made it, and at the shared wall-clock instant the driver answers with, the
skipping side of every pair (skips_first) skips; the server re-queues both, and they are matched
again.
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
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pairline.bench.config import Options
from pairline.bench.log import ENDING, Record
from pairline.bench.model import Churn

# WebSocket frames of this worker's users after hello: "rx" server -> client, "tx" client -> server.
FRAMES: Counter[str] = Counter()

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

# What the checker's verdicts hang on: after the window, users read on until none has come for
# --grace s (at most DRAIN_CAP_S), so that a slow server's last answers are not cut off.
SETTLING = frozenset({"matched", "confirmed", "cancelled", "left", "reply", "error", "resumed"})
DRAIN_CAP_S = 60.0
# Closes after which protocol.md's client does not resume: a bug, a bad token, banned, taken
# over, flooding. After any other (a stale 4408 included) it reconnects with `resume`.
FINAL_CLOSES = frozenset({4400, 4401, 4403, 4409, 4429})


@dataclass
class Quiet:
    """When this worker's users last saw something SETTLING."""

    last: float = 0.0

    async def wait(self, quiet_s: float, cap_s: float = DRAIN_CAP_S) -> None:
        """Return once `quiet_s` s passed with nothing settling, or after `cap_s` s."""
        deadline = time.time() + cap_s
        while True:
            now = time.time()
            still = quiet_s - (now - self.last)  # how long until it has been quiet enough
            if still <= 0 or now >= deadline:
                return
            await asyncio.sleep(min(still, deadline - now))


@dataclass
class Pending:
    """A command sent and not yet answered."""

    type: str
    match_id: str
    sent: float
    message: dict[str, Any]


def skips_first(user_id: str, partner_id: str) -> bool:
    """--mass-skip: whether this side of a pair skips (the smaller user id: both sides agree
    without talking, wherever they live)."""
    return user_id < partner_id


class User:
    """One simulated user; with churn=False (burst and mass-skip modes) it stays in each call
    until it or its partner is told to skip.

    With `chat_interval` > 0 it also sends a `chat` to its partner every `chat_interval` s of a
    call (the first at a uniform random point of the first interval).
    """

    def __init__(
        self,
        name: str,
        rng: random.Random,
        log: list[Record],
        model: Churn,
        churn: bool,
        chat_interval: float = 0.0,
        quiet: Quiet | None = None,
    ) -> None:
        self.name, self.rng, self.log, self.model, self.churn = name, rng, log, model, churn
        self.quiet = quiet or Quiet()
        self.chat_interval = chat_interval
        self.ignores = churn and model.ignores_matched(rng)
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.base = ""
        self.token = ""
        self.session = ""
        self.user_id = ""
        self.last_seq = 0  # the highest seq processed
        self.ids = itertools.count(1)
        self.pending: dict[str, Pending] = {}
        self.call: str | None = None  # the confirmed match we are in
        self.proposed: str | None = None
        self.timer: asyncio.TimerHandle | None = None  # end of the current "talk"
        self.rejoin: asyncio.TimerHandle | None = None  # a join that is due
        self.wait_start: float | None = None  # when the current wait for a match began
        self.wait_provisional = False  # wait_start is a skip's send time, awaiting its reply
        self.queued_at: float | None = None  # when the user last (re-)entered the queue
        self.shed = False  # the last join was shed (rate_limited): its retry is the same wait
        self.held: str | None = None  # an ignored `matched`: no ack until it is cancelled
        self.replay_left = 0  # replayed messages still to come after a resume's welcome
        self.synced: tuple[str, str | None, str | None, bool] = ("idle", None, None, False)
        self.confirmed = asyncio.Event()  # set by each match_confirmed (burst mode waits)
        self.partners: dict[str, str] = {}  # match_id -> partner's user id
        self.barrier_call: str | None = None  # --mass-skip: its call at the last barrier
        self.stopping = False  # window over: no new commands, no acks of new `matched`
        self.acks_frozen = False
        self.closing = False
        self.tasks: set[asyncio.Task[None]] = set()

    # ---- connection ------------------------------------------------------------------

    async def connect(self, base: str) -> None:
        self.base = base
        self.token = await guest_token(base, self.name)
        await self.open(resume=False)

    async def open(self, resume: bool) -> dict[str, Any]:
        """A new connection and `hello` (resuming the session if asked); return the welcome."""
        hello: dict[str, Any] = {"type": "hello", "v": 1, "token": self.token}
        if resume:
            hello |= {"resume": self.session, "last_seq": self.last_seq}
        ws_base = self.base.replace("http", "ws", 1)  # http -> ws, https -> wss
        ws = await connect(
            f"{ws_base}/v1/ws", compression=None, ping_interval=None, open_timeout=30, proxy=None
        )
        await ws.send(_encode(hello), text=True)
        welcome: dict[str, Any] = _decode(await asyncio.wait_for(ws.recv(decode=False), 30))
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"expected welcome, got {welcome}")
        if welcome["session"] != self.session:
            self.session, self.last_seq = welcome["session"], welcome["last_seq"]
        self.user_id = welcome["user_id"]
        self.ws = ws
        self.reader = asyncio.get_running_loop().create_task(self.read_loop(ws))
        return welcome

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        if self.reader is not None:
            self.reader.cancel()

    async def read_loop(self, ws: ClientConnection) -> None:
        try:
            while True:
                data = await ws.recv(decode=False)
                FRAMES["rx"] += 1
                await self.on_message(_decode(data))
                if self.replay_left:
                    self.replay_left -= 1
                    if not self.replay_left:
                        self.sync()
        except ConnectionClosed as exc:
            if self.closing or ws is not self.ws:  # the end, or our own drop
                return
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            self.record("dropped", "", code)
            self.ws = None
            if code not in FINAL_CLOSES:  # protocol.md: reconnect with resume
                self.spawn(self.resume, self.call or "", False)
        except Exception:  # a generator bug must show, not leave a user silently idle
            self.record("crash", "", traceback.format_exc(limit=3))

    async def send(self, message: dict[str, Any]) -> None:
        if self.ws is None:  # dropped: lost, as on a real network (commands are re-sent)
            return
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(_encode(message), text=True)
            FRAMES["tx"] += 1

    def record(self, kind: str, match_id: str, detail: Any = None) -> None:
        t = time.time()
        self.log.append((t, self.user_id or self.name, kind, match_id, detail))
        if kind in SETTLING:
            self.quiet.last = t

    # ---- commands and timers -----------------------------------------------------------

    async def command(self, type_: str, **fields: Any) -> None:
        cid = str(next(self.ids))
        message = {"type": type_, "id": cid, **fields}
        match_id = fields.get("match_id", "")
        self.pending[cid] = Pending(type_, match_id, time.time(), message)
        self.record(f"{type_}_sent", match_id)
        await self.send(message)

    async def join(self) -> None:
        self.rejoin = None
        if not self.stopping and self.call is None:
            now = time.time()
            if not self.shed or self.wait_start is None:
                self.wait_start, self.wait_provisional = now, False
            self.shed = False
            self.queued_at = now
            await self.command("join")

    async def hang_up(self, match_id: str) -> None:
        """End of a "talk": drop and resume, skip (both re-queued), block or end."""
        if self.stopping or self.call != match_id:
            return
        action = self.model.hang_up(self.rng)
        if action == "drop":
            await self.drop_and_resume(match_id)
            return
        if action == "skip":
            await self.skip(match_id)
            return
        self.call = None
        await self.command(action, match_id=match_id)

    async def skip(self, match_id: str) -> None:
        """Skip the call: the server re-queues both (this side's wait starts now, for good once
        the reply comes)."""
        self.call = None
        self.wait_start, self.wait_provisional = time.time(), True
        self.queued_at = self.wait_start
        await self.command("skip", match_id=match_id)

    # ---- mass skip -----------------------------------------------------------------------

    def in_new_call(self) -> bool:
        """In a call, and not the one it was in at the last barrier."""
        return self.call is not None and self.call != self.barrier_call

    async def new_call(self) -> None:
        """Return once in_new_call (each match_confirmed wakes it to look)."""
        while not self.in_new_call():
            self.confirmed.clear()
            await self.confirmed.wait()

    def to_skip(self) -> str | None:
        """The call to skip at the fire time: the one it was in at the barrier, if it is still
        on and this is the side of the pair that skips."""
        partner = self.partners.get(self.call or "")
        if self.stopping or self.call != self.barrier_call or partner is None:
            return None
        return self.call if skips_first(self.user_id, partner) else None

    async def drop_and_resume(self, match_id: str) -> None:
        """Cut the connection (no close handshake), then resume the session."""
        if self.ws is None:
            return
        self.record("drop", match_id)
        ws, self.ws = self.ws, None
        ws.transport.abort()
        await self.resume(match_id, True)

    async def resume(self, match_id: str, talk_again: bool) -> None:
        """Reconnect to the same node with `hello{resume, last_seq}` (three tries), re-send
        every unanswered command under its own id; `talk_again`: a new talk if still in the
        call `match_id` (the last one ended with the drop)."""
        welcome: dict[str, Any] | None = None
        asked, error = self.session, ""
        for pause in (self.model.reconnect_pause(self.rng), 1.0, 2.0):
            await asyncio.sleep(pause)
            if self.closing:
                return
            started = time.time()
            try:
                welcome = await self.open(resume=True)
                break
            except Exception as exc:
                error = repr(exc)
        if welcome is None:
            self.record("lost", "", error)
            return
        if self.closing:
            await self.close()
            return
        state = welcome["state"]
        match = state.get("match") or {}
        fresh = welcome["session"] != asked
        replayed = int(welcome.get("replayed") or 0)
        self.record("resumed", match_id, (fresh, time.time() - started, replayed))
        # Once the replay is processed, the user takes the welcome's state where it differs.
        partner = (match.get("partner") or {}).get("user_id")
        self.synced = (state["status"], match.get("match_id"), partner, fresh)
        self.replay_left = replayed
        if not replayed:
            self.sync()
        for pending in list(self.pending.values()):
            await self.send(pending.message)  # the same id: no second effect
        if talk_again and self.call == match_id and not self.stopping:
            self.timer = self.later(self.model.talk(self.rng), self.hang_up, match_id)

    def sync(self) -> None:
        """The replay after a resume's welcome is processed: record the welcome's state, and
        take it where the user's own view differs (a fresh session, or an event that never
        came), so that the user goes on churning."""
        status, match_id, partner, fresh = self.synced
        self.record("synced", match_id or "", (status, partner, fresh))
        if match_id and partner:
            self.partners.setdefault(match_id, partner)
        mine = ("in_call", self.call) if self.call else ("proposed", self.proposed)
        theirs = (status, match_id) if status in ("in_call", "proposed") else ("proposed", None)
        lost_idle = status == "idle" and self.rejoin is None and not self.pending
        if fresh or mine != theirs or lost_idle:
            self.resync(status, match_id)

    def resync(self, status: str, match_id: str | None) -> None:
        """Take the server's state: its call or proposal, else idle (join again) or queued."""
        self.call = match_id if status == "in_call" else None
        self.proposed = match_id if status == "proposed" else None
        if self.timer is not None:
            self.timer.cancel()
        if self.call is not None and not self.stopping:
            self.timer = self.later(self.model.talk(self.rng), self.hang_up, self.call)
        elif status == "idle":
            self.rejoin_later()

    def later(
        self, delay: float, action: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> asyncio.TimerHandle:
        loop = asyncio.get_running_loop()
        return loop.call_later(delay, self.spawn, action, *args)

    def spawn(self, action: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        task = asyncio.get_running_loop().create_task(action(*args))
        self.tasks.add(task)  # a reference, so the task is not collected mid-way
        task.add_done_callback(self.tasks.discard)

    async def chat(self, match_id: str) -> None:
        """One `chat` to the partner while the call lasts, then the next one later."""
        if self.stopping or self.call != match_id:
            return
        self.record("chat_sent", match_id)
        await self.send({"type": "chat", "match_id": match_id, "text": "hello"})
        self.later(self.chat_interval, self.chat, match_id)

    def rejoin_later(self, delay: float | None = None) -> None:
        """Join again after the model's pause (or `delay`); once, however many events ask."""
        if self.rejoin is not None:
            if delay is None:
                return  # one is already due
            self.rejoin.cancel()
        self.rejoin = self.later(
            self.model.rejoin_pause(self.rng) if delay is None else delay, self.join
        )

    def requeued(self) -> None:
        """The server put us back in the queue (also when our own skip/end crossed it)."""
        if self.call is None and self.proposed is None:
            self.wait_start, self.wait_provisional = time.time(), False
            self.queued_at = self.wait_start

    # ---- incoming ----------------------------------------------------------------------

    async def on_message(self, msg: dict[str, Any]) -> None:
        seq = msg.get("seq")
        if seq is not None:
            if seq <= self.last_seq:
                return  # processed before (a replay overlapping what we had)
            self.last_seq = seq
        kind = msg.get("type", "")
        if kind == "matched":
            if self.stopping:
                self.acks_frozen = True  # acks are cumulative: this one and all later unacked
            elif self.ignores:
                self.held = msg["match_id"]
                self.record("held", msg["match_id"])
        elif kind == "match_cancelled" and msg.get("match_id") == self.held:
            self.held = None  # this ack now covers the ignored `matched` too
        if seq is not None and not self.acks_frozen and self.held is None:
            await self.send({"type": "ack", "seq": seq})
        handler = getattr(self, f"on_{kind}", None)
        if handler is not None:
            await handler(msg)

    async def on_reply(self, msg: dict[str, Any]) -> None:
        pending = self.pending.pop(msg.get("re", ""), None)
        if pending is None:
            return  # the answer to a command re-sent after a resume, already answered
        cooldown = msg.get("cooldown_ms")
        self.record("reply", pending.match_id, (pending.type, time.time() - pending.sent, cooldown))
        if pending.type == "skip":
            if cooldown:  # the skip that reached the limit: not re-queued
                self.rejoin_later(cooldown / 1000)
            elif self.wait_provisional:  # re-queued as of this reply
                self.wait_start, self.wait_provisional = time.time(), False
                self.queued_at = self.wait_start
        elif pending.type in ENDING:  # end, block: idle
            self.proposed = None  # a late end also withdrew a proposal that followed
            self.rejoin_later()

    async def on_error(self, msg: dict[str, Any]) -> None:
        # A late skip/end gets invalid_state once a newer proposal exists; it changed nothing.
        pending = self.pending.pop(msg.get("re", ""), None)
        type_, match_id = (pending.type, pending.match_id) if pending else ("", "")
        self.record("error", match_id, f"{type_}:{msg.get('code')}")
        code = msg.get("code")
        # Cooling down, or a join shed by a busy node: join again when the server says.
        if code == "cooldown" or (code == "rate_limited" and type_ == "join"):
            self.shed = code == "rate_limited"
            self.rejoin_later(msg.get("retry_after_ms", 1000) / 1000)

    async def on_matched(self, msg: dict[str, Any]) -> None:
        self.proposed, self.wait_provisional = msg["match_id"], False
        self.partners[msg["match_id"]] = msg["partner"]["user_id"]
        self.record("matched", msg["match_id"], msg["partner"]["user_id"])

    async def on_match_confirmed(self, msg: dict[str, Any]) -> None:
        match_id = msg["match_id"]
        self.record("confirmed", match_id, (self.wait_start, self.queued_at))
        self.call, self.proposed, self.wait_start = match_id, None, None
        self.confirmed.set()
        if self.churn and not self.stopping:
            self.timer = self.later(self.model.talk(self.rng), self.hang_up, match_id)
        if self.chat_interval > 0 and not self.stopping:
            self.later(self.rng.uniform(0, self.chat_interval), self.chat, match_id)

    async def on_match_cancelled(self, msg: dict[str, Any]) -> None:
        requeued = bool(msg.get("requeued"))
        self.record("cancelled", msg.get("match_id", ""), (msg.get("reason"), requeued))
        if msg.get("match_id") == self.proposed:
            self.proposed = None
        if not requeued:
            self.rejoin_later()
        else:
            self.queued_at = time.time()  # the wait goes on from its old start

    async def on_partner_left(self, msg: dict[str, Any]) -> None:
        match_id = msg.get("match_id", "")
        requeued = bool(msg.get("requeued"))
        self.record("left", match_id, (msg.get("reason"), requeued))
        if self.call == match_id:
            self.call = None
            if self.timer is not None:
                self.timer.cancel()
        if not requeued:
            self.rejoin_later()
        else:
            self.requeued()

    async def on_partner_reconnecting(self, msg: dict[str, Any]) -> None:
        self.record("reconnecting", msg.get("match_id", ""))

    async def on_partner_resumed(self, msg: dict[str, Any]) -> None:
        self.record("partner_resumed", msg.get("match_id", ""))

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
    """Return at `t` or just after, never before: uvloop's timers may fire a millisecond or so
    early, and the rest is waited out in a spin."""
    await asyncio.sleep(max(0.0, t - time.time()))
    while time.time() < t:
        pass


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


async def _in_calls(users: list[User], deadline: float) -> int:
    """A barrier: wait until every user is in a new call, or until `deadline`; make each
    user's call the barrier's; return how many were in a new call."""
    waits = [asyncio.get_running_loop().create_task(u.new_call()) for u in users]
    if waits:
        _, late = await asyncio.wait(waits, timeout=max(0.0, deadline - time.time()))
        for task in late:
            task.cancel()
    made = sum(u.in_new_call() for u in users)
    for user in users:
        user.barrier_call = user.call
    return made


async def _mass_skip(users: list[User], pipe: Connection, start: float, patience: float) -> None:
    """--mass-skip: at each barrier (bounded by `patience` s from its start), report how many
    users made it; the driver answers with the next shared fire time (None: done), when the
    skipping side of every pair in a call at the barrier skips at once."""
    loop = asyncio.get_running_loop()
    while True:
        pipe.send(("ready", await _in_calls(users, start + patience)))
        fire: float | None = await loop.run_in_executor(None, pipe.recv)
        if fire is None:
            return
        await _sleep_until(fire)
        skips = [(u, m) for u in users if (m := u.to_skip()) is not None]
        await asyncio.gather(*(u.skip(match_id) for u, match_id in skips))
        start = fire


@dataclass(frozen=True)
class Plan:
    """One worker's share: `users` users, global indexes first..first+users-1."""

    options: Options
    urls: list[str]
    index: int
    first: int
    users: int


async def _run(plan: Plan, pipe: Connection) -> None:
    """Connect, report, get the schedule, join, run the window, drain, close, send the log."""
    loop = asyncio.get_running_loop()
    opts = plan.options
    log: list[Record] = []
    rng = random.Random(opts.seed * 1000 + plan.index)
    churn = opts.mode == "churn"
    names = [f"bench-{plan.index}-{i}" for i in range(plan.users)]
    quiet = Quiet()
    users = [
        User(n, random.Random(rng.random()), log, opts.churn, churn, opts.chat_interval, quiet)
        for n in names
    ]
    live = await _connect_all(users, node_urls(plan.urls, plan.first, len(users)))
    pipe.send(("connected", len(live)))
    sched: dict[str, float] = await loop.run_in_executor(None, pipe.recv)
    lags: list[tuple[float, float]] = []
    watcher = loop.create_task(_watch_lag(lags))
    await _sleep_until(sched["t_join"])
    cpu0, frames0 = time.process_time(), FRAMES.copy()
    if opts.mode != "idle":
        await asyncio.gather(*(u.join() for u in live))
    if opts.mode == "burst" and live:
        waits = [loop.create_task(u.confirmed.wait()) for u in live]
        _, late = await asyncio.wait(waits, timeout=max(0.0, sched["t1"] - time.time()))
        for task in late:
            task.cancel()
    elif opts.mode == "mass_skip":
        await _mass_skip(live, pipe, sched["t_join"], opts.duration)
    elif opts.mode != "burst":
        await _sleep_until(sched["t0"])
        cpu0, frames0 = time.process_time(), FRAMES.copy()
        await _sleep_until(sched["t1"])
    cpu1, frames = time.process_time(), FRAMES - frames0
    for user in live:
        user.stopping = True
    settled = time.time()
    pipe.send(("settled", settled))
    await quiet.wait(opts.grace)
    drained = time.time() - settled
    watcher.cancel()
    await asyncio.gather(*(u.close() for u in live))
    result = {"log": log, "lags": lags, "cpu_window": cpu1 - cpu0, "frames": dict(frames)}
    result["drain_s"] = drained
    pipe.send(("result", result))


def worker_main(plan: Plan, pipe: Connection) -> None:
    """Entry point of one worker process (multiprocessing target), on uvloop if present."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(_run(plan, pipe))
    else:
        uvloop.run(_run(plan, pipe))
