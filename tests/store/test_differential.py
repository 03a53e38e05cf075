"""The Redis store behaves exactly as the memory store: hypothesis drives the same random
operations through both and compares, after every step, each outcome (effects in order, replies,
refusals), every user's snapshot, queue positions, the next deadline, and the whole state
underneath (users, queue, matches, deadlines, blocks, bans, skip records, rematch pairs)."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import os
import uuid
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from pairline.core.matchmaker import Matchmaker
from pairline.store.memory import MemoryStore
from pairline.store.redis import RedisStore
from pairline.store.redis.keys import PartitionKeys
from tests.core.test_matchmaker_properties import RULES as CORE_RULES
from tests.store.normal import outcome

USERS = [f"u{i}" for i in range(4)]
NODES = ["n1", "n2"]
# The core property test's rules, with a scan bound below the number of users so it matters.
RULES = replace(CORE_RULES, scan_limit=3, eta_window_ms=60_000)
users = st.sampled_from(USERS)


def memory_state(mm: Matchmaker, now: int) -> dict[str, Any]:
    """Everything the memory store holds, in the shape `redis_state` reads it."""
    return {
        "users": [
            (
                u.user_id,
                u.display_name,
                u.session_id,
                u.node_id,
                u.presence.value,
                u.last_heard,
                u.status.value,
                sorted(u.prefs.interests),
                u.prefs.lang,
                u.ticket,
                u.match_id,
                u.last_match_id,
                u.last_partner_id,
                u.away_since,
                u.order,
            )
            for u in mm.users.values()  # in the dict's order, which the sweep follows
        ],
        "queue": [(uid, mm.users[uid].ticket) for uid in mm.queue],
        "last_ticket": mm._last_ticket,
        "matches": {
            m.match_id: (
                m.users,
                m.phase.value,
                m.created_at,
                list(m.common_interests),
                m.tickets,
                list(m.probing.items()),
                sorted(m.acked),
                m.proposed_at,
                m.confirmed_at,
            )
            for m in mm.matches.values()
        },
        "deadlines": {(k.value, key): at for (k, key), at in mm.deadlines._current.items()},
        "heap": sorted((at, n + 1, k.value, key) for at, n, k, key in mm.deadlines._heap),
        "blocks": {uid: sorted(b) for uid, b in mm.compat.blocks.items() if b},
        "recent": sorted((tuple(pair), at) for pair, at in mm.compat.recent.items()),
        "skips": {uid: (r.skips, r.level, r.cooldown_until) for uid, r in mm.skips.items()},
        "pairings": sorted(t for t in mm.rate._times if t > now - RULES.eta_window_ms),
        "bans": {uid: 0 if until is None else until for uid, until in mm.bans.items()},
        "ban_ends": sorted((uid, until) for uid, until in mm.bans.items() if until is not None),
    }


async def redis_state(client: aioredis.Redis, keys: PartitionKeys, now: int) -> dict[str, Any]:
    """Everything the Redis store holds for USERS, read straight from its keys."""
    rows = []
    for uid in USERS:
        h = await client.hgetall(keys.user(uid))
        if h:
            rows.append((int(h["seq"]), uid, h))
    matches = {}
    pattern = keys.scan_pattern("match")
    async for name in client.scan_iter(match=pattern, count=1000):
        h = await client.hgetall(name)
        flat = json.loads(h.get("probing") or "[]")
        matches[name.removeprefix(pattern[:-1])] = (
            (h["a"], h["b"]),
            h["phase"],
            int(h["created"]),
            json.loads(h["common"] or "[]"),
            {h["a"]: int(h["ta"]), h["b"]: int(h["tb"])},
            [(u, int(t)) for u, t in zip(flat[::2], flat[1::2], strict=True)],
            sorted(json.loads(h.get("acked") or "[]")),
            _int(h.get("proposed")),
            _int(h.get("confirmed")),
        )
    heap = []
    for member, at in await client.zrange(keys.key("deadlines"), 0, -1, withscores=True):
        seq, kind, key = member.split("|", 2)
        heap.append((int(at), int(seq), kind, key))
    recent = []
    for member, at in await client.zrange(keys.key("recent"), 0, -1, withscores=True):
        size, rest = member.split(":", 1)
        recent.append(((rest[: int(size)], rest[int(size) + 1 :]), int(at)))
    skips = {}
    for uid in USERS:
        r = await client.hgetall(keys.key("skips", uid))
        if r:
            times = [int(t) for t in r["times"].split(",") if t]
            skips[uid] = (times, int(r["level"]), int(r["until"]))
    blocks = {}
    for uid in USERS:
        if blocked := await client.smembers(keys.key("blocks", uid)):
            blocks[uid] = sorted(blocked)
    horizon = f"({now - RULES.eta_window_ms}"
    pairings = await client.zrangebyscore(keys.key("pairings"), horizon, "+inf", withscores=True)
    last_ticket = await client.hget(keys.key("counters"), "last_ticket")
    deadlines = await client.hgetall(keys.key("deadline_at"))
    bans = await client.hgetall(keys.key("bans"))
    ban_ends = await client.zrange(keys.key("ban_ends"), 0, -1, withscores=True)
    return {
        "users": [
            (
                uid,
                h["name"],
                h["session"],
                h["node"],
                h["presence"],
                int(h["heard"]),
                h["status"],
                json.loads(h.get("interests", "[]")),
                h.get("lang"),
                _int(h.get("ticket")),
                h.get("match"),
                h.get("last_match"),
                h.get("last_partner"),
                _int(h.get("away_since")),
                int(h.get("order", 0)),
            )
            for _, uid, h in sorted(rows)
        ],
        "queue": [
            (uid, int(t)) for uid, t in await client.zrange(keys.queue(), 0, -1, withscores=True)
        ],
        "last_ticket": int(last_ticket or 0),
        "matches": matches,
        "deadlines": {tuple(f.split("|", 1)): int(at) for f, at in deadlines.items()},
        "heap": sorted(heap),
        "blocks": blocks,
        "recent": sorted(recent),
        "skips": skips,
        "pairings": sorted(int(t) for _, t in pairings),
        "bans": {uid: int(until) for uid, until in bans.items()},
        "ban_ends": sorted((uid, int(until)) for uid, until in ban_ends),
    }


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)


class DifferentialMachine(RuleBasedStateMachine):
    def __init__(self, redis_url: str) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        prefix = f"pd-{uuid.uuid4().hex[:12]}"
        self.memory = MemoryStore(RULES, id_suffix=lambda: "")
        # The store's client returns bytes; the inspecting one decodes (both paths are real).
        self.redis = RedisStore(
            aioredis.Redis.from_url(redis_url), RULES, prefix=prefix, id_suffix=lambda: ""
        )
        self.inspect = aioredis.Redis.from_url(redis_url, decode_responses=True)
        self.keys = PartitionKeys(prefix)
        self.now = 1_000_000
        self.sessions = itertools.count()

    def teardown(self) -> None:
        async def clean() -> None:
            names = [k async for k in self.inspect.scan_iter(match=f"{self.keys.prefix}*")]
            if names:
                await self.inspect.delete(*names)
            await self.inspect.aclose()
            await self.redis.close()

        try:
            self.loop.run_until_complete(clean())
        finally:
            self.loop.close()

    @property
    def mm(self) -> Matchmaker:
        return self.memory.mm

    def both(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run `method` on both stores (each with its own copy of the arguments) and require
        the same outcome."""
        results = []
        for store in (self.memory, self.redis):
            call = getattr(store, method)(*copy.deepcopy(args), **kwargs)
            try:
                results.append(self.loop.run_until_complete(call))
            except Exception as exc:
                results.append(exc)
        want, got = (outcome(r) for r in results)
        assert got == want, f"{method}{args}:\n memory {results[0]!r}\n redis  {results[1]!r}"
        return results[0]

    def match_of(self, user_id: str) -> str:
        user = self.mm.users.get(user_id)
        if user and user.match_id:
            return user.match_id
        if user and user.last_match_id:
            return user.last_match_id
        return "m-unknown"

    # ---------------------------------------------------------------- rules

    @rule(user=users, node=st.sampled_from(NODES))
    def hello(self, user: str, node: str) -> None:
        self.both("attach", user, user.upper(), node, f"s{next(self.sessions)}", self.now)

    @rule(user=users, current=st.booleans())
    def drop(self, user: str, current: bool) -> None:
        session = self.mm.session_of(user) if current else "s-gone"
        self.both("detach", user, session or "s-none", self.now)

    @rule(node=st.sampled_from(NODES))
    def node_dies(self, node: str) -> None:
        self.both("node_lost", node, self.now)

    @rule(user=users)
    def renew(self, user: str) -> None:
        self.both("renew_session", user, f"r{next(self.sessions)}")

    @rule(
        user=users,
        interests=st.sets(st.sampled_from(["a", "b", "é", "😀"])),
        lang=st.sampled_from([None, "", "en", "fr"]),
    )
    def join(self, user: str, interests: set[str], lang: str | None) -> None:
        self.both("join", user, frozenset(interests), lang, self.now)

    @rule(user=users)
    def leave(self, user: str) -> None:
        self.both("leave", user, self.now)

    @rule(user=users)
    def ack(self, user: str) -> None:
        self.both("heard", user, self.now)
        self.both("ack", user, self.match_of(user), self.now)

    @rule(user=users)
    def heard(self, user: str) -> None:
        self.both("heard", user, self.now)

    @rule(user=users)
    def skip(self, user: str) -> None:
        self.both("skip", user, self.match_of(user), self.now)

    @rule(user=users, block=st.booleans())
    def end(self, user: str, block: bool) -> None:
        self.both("end", user, self.match_of(user), self.now, block=block)

    @rule(user=users, kind=st.sampled_from(["chat", "signal"]))
    def relay(self, user: str, kind: str) -> None:
        message = {"type": kind, "text": "hi"} if kind == "chat" else {"type": kind, "data": {}}
        self.both("relay", user, self.match_of(user), message, self.now)

    @rule(user=users)
    def media_lost(self, user: str) -> None:
        self.both("media_lost", user, self.match_of(user), self.now)

    @rule(user=users)
    def media_gone(self, user: str) -> None:
        self.both("media_gone", user, self.match_of(user), self.now)

    @rule(user=users, present=st.lists(users, max_size=2, unique=True))
    def media_absent(self, user: str, present: list[str]) -> None:
        self.both("media_absent", self.match_of(user), present, self.now)

    @rule(user=users, interests=st.sets(st.sampled_from(["a", "b"])))
    def hello_and_join(self, user: str, interests: set[str]) -> None:
        if user not in self.mm.users:
            self.hello(user, NODES[0])
        self.both("join", user, frozenset(interests), None, self.now)

    @rule()
    def everyone_answers_and_acks(self) -> None:
        for user_id in list(self.mm.users):
            self.both("heard", user_id, self.now)
        for match in list(self.mm.matches.values()):
            for user_id in match.users:
                self.both("ack", user_id, match.match_id, self.now)

    @rule(dt=st.one_of(st.integers(0, 1500), st.integers(0, 12_000), st.integers(0, 70_000)))
    def time_passes(self, dt: int) -> None:
        self.now += dt
        self.both("expire", self.now)

    @rule()
    def sweep(self) -> None:
        self.both("sweep_stale", self.now)

    @rule(user=users, ban_ms=st.sampled_from([None, 0, 1000, 15_000]))
    def ban(self, user: str, ban_ms: int | None) -> None:
        self.both("ban", user, None if ban_ms is None else self.now + ban_ms, self.now)

    @rule(pick=st.integers(0, 3), ban_ms=st.sampled_from([None, 15_000]))
    def ban_someone_matched(self, pick: int, ban_ms: int | None) -> None:
        """Bans of users in a proposal, health check or call, which random bans rarely hit."""
        matched = sorted(uid for uid, u in self.mm.users.items() if u.match_id)
        if matched:
            self.ban(matched[pick % len(matched)], ban_ms)

    @rule(user=users)
    def unban(self, user: str) -> None:
        self.both("unban", user, self.now)

    @rule(blocker=users, blocked=users)
    def unblock(self, blocker: str, blocked: str) -> None:
        self.both("unblock", blocker, blocked)

    @rule(pairs=st.lists(st.tuples(users, users), max_size=3))
    def load_blocks(self, pairs: list[tuple[str, str]]) -> None:
        # A loaded block keeps a pair apart from then on, but ends no match they are in (at
        # start-up there is none: `end` with block ended it first); leave those out.
        together = {frozenset(m.users) for m in self.mm.matches.values()}
        self.both("load_blocks", [p for p in pairs if frozenset(p) not in together])

    @rule(bans=st.dictionaries(users, st.one_of(st.none(), st.integers(-2000, 20_000))))
    def load_bans(self, bans: dict[str, int | None]) -> None:
        self.both("load_bans", {u: None if d is None else self.now + d for u, d in bans.items()})

    @rule(
        records=st.dictionaries(
            users,
            st.tuples(
                st.lists(st.integers(-700_000, 0), max_size=3),
                st.integers(0, 2),
                st.integers(-100_000, 100_000),
            ),
        )
    )
    def load_skip_penalties(self, records: dict[str, tuple[list[int], int, int]]) -> None:
        loaded = {
            u: ([self.now + t for t in skips], level, max(0, self.now + until))
            for u, (skips, level, until) in records.items()
        }
        self.both("load_skip_penalties", loaded)

    # ---------------------------------------------------------------- the same, everywhere

    @invariant()
    def same_views(self) -> None:
        for user_id in USERS:
            self.both("snapshot", user_id, self.now)
        self.both("queue_status", [*USERS, "nobody"], self.now)
        self.both("next_deadline")
        self.both("population")

    @invariant()
    def same_state(self) -> None:
        self.mm.check_invariants()
        want = memory_state(self.mm, self.now)
        got = self.loop.run_until_complete(redis_state(self.inspect, self.keys, self.now))
        for part, value in want.items():
            assert got[part] == value, f"{part}:\n memory {value}\n redis  {got[part]}"


@pytest.mark.timeout(300)
def test_redis_store_behaves_as_the_memory_store(redis_url: str) -> None:
    run_state_machine_as_test(
        lambda: DifferentialMachine(redis_url),
        settings=settings(
            max_examples=int(os.environ.get("DIFF_EXAMPLES", "100")),
            stateful_step_count=50,
            deadline=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
