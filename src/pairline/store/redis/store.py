"""The Redis backend: every transition one Lua script, so that any number of nodes can share
one queue partition. It behaves exactly as `MemoryStore` does (tests/store/test_differential.py
holds it to that), with two bounds a shared store needs: `expire` completes at most
`expire_batch` deadlines per call and `sweep_stale` drops at most `sweep_batch` users per call
(the rest wait for the next call), and `node_lost` detaches a node's users `node_batch` per
script, and `heard_many` tells `heard_batch` users per script. The start-up loaders write
`load_batch` items per pipeline or script.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pairline.core import effects as fx
from pairline.core.rules import Rules
from pairline.errors import StoreUnavailable
from pairline.settings import REDIS_MAX_PENDING, REDIS_MAX_WAIT_MS, REDIS_POOL_TIMEOUT_S
from pairline.store.base import Attached, Effects, Outcome, StateView
from pairline.store.memory import random_suffix
from pairline.store.redis import codec
from pairline.store.redis.gate import RequestGate
from pairline.store.redis.keys import PartitionKeys
from pairline.store.redis.loader import ScriptRunner

_T = TypeVar("_T")

# Requests in flight at once, whatever the client's pool allows (an unbounded pool's default).
MAX_SLOTS = 256
# A media room's last change matters while its call lasts; the key outlives any call.
MEDIA_CHANGE_TTL_MS = 24 * 3600 * 1000

_json = msgspec.json.Encoder().encode


class RedisStore:
    """Queue and match state of one partition, in Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        rules: Rules,
        *,
        prefix: str = "pairline",
        partition: str = "main",
        node_id: str = "",
        id_suffix: Callable[[], str] = random_suffix,
        expire_batch: int = 100,
        sweep_batch: int = 500,
        node_batch: int = 500,
        load_batch: int = 500,
        heard_batch: int = 500,
        min_pending: int = REDIS_MAX_PENDING,
        max_wait_s: float = REDIS_MAX_WAIT_MS / 1000,
    ) -> None:
        self.client = client  # also carries the cluster's pub/sub
        self._scripts = ScriptRunner(client)
        self.keys = PartitionKeys(prefix, partition)
        self._rules = json.dumps(dataclasses.asdict(rules))
        # The node running the transitions: they hand what they have for other nodes' users
        # to those nodes (lib.lua); "": no node listens (the store used on its own).
        self._node_id = node_id
        # Called once per transition: its value seeds the ids of the matches that transition
        # makes ("" keeps them plain `m_<n>`, as MemoryStore's ids with the same suffix).
        self._id_seed = id_suffix
        self._expire_batch = expire_batch
        self._sweep_batch = sweep_batch
        self._node_batch = node_batch
        self._load_batch = load_batch
        self._heard_batch = heard_batch
        # The gate stands in for the pool's queue: as many slots as the pool has connections,
        # and the pool's own wait before a request fails (a blocking pool's `timeout`).
        pool = client.connection_pool
        pool_size = getattr(pool, "max_connections", MAX_SLOTS)
        self._gate = RequestGate(
            min(pool_size, MAX_SLOTS),
            min_pending=min_pending,
            max_wait_s=max_wait_s,
            slot_timeout_s=getattr(pool, "timeout", None) or REDIS_POOL_TIMEOUT_S,
        )

    def overloaded(self) -> bool:
        return self._gate.overloaded()

    def shed_turn_ms(self) -> int:
        return round(self._gate.turn() * 1000)

    async def _run(self, script: str, now: int, *args: str | int | bytes) -> tuple[Any, Effects]:
        """Run one transition; raise its refusal, or StoreUnavailable when Redis fails."""
        argv = (self._rules, now, self._id_seed(), self._node_id, *args)
        async with self._gate.slot(script):
            raw = await self._scripts.run(script, (self.keys.base,), argv)
        return codec.outcome(raw)

    async def _command(self, script: str, now: int, *args: str | int) -> Outcome:
        """A command's script replies {the user's event order, its queue reply or {}}."""
        (order, reply), effects = await self._run(script, now, *args)
        return Outcome(codec.queue_reply(reply) if reply else {}, effects, order)

    async def attach(
        self, user_id: str, display_name: str, node_id: str, new_session_id: str, now: int
    ) -> Attached:
        reply, effects = await self._run(
            "attach", now, user_id, display_name, node_id, new_session_id
        )
        session_id, fresh, order = reply
        return Attached(session_id, bool(fresh), effects, order)

    async def renew_session(self, user_id: str, session_id: str) -> None:
        await self._run("renew_session", 0, user_id, session_id)

    async def detach(self, user_id: str, session_id: str, now: int) -> Effects:
        return (await self._run("detach", now, user_id, session_id))[1]

    async def node_lost(self, node_id: str, now: int) -> Effects:
        # In batches of detaches, so that no one script holds Redis for a whole node's users.
        effects: Effects = []
        while True:
            (left,), more = await self._run("node_lost", now, node_id, self._node_batch)
            effects += more
            if not left:
                return effects

    async def heard(self, user_id: str, now: int) -> Effects:
        return (await self._run("heard", now, user_id))[1]

    async def heard_many(self, user_ids: Sequence[str], now: int) -> Effects:
        effects: Effects = []
        for batch in _batches(user_ids, self._heard_batch):
            effects += (await self._run("heard", now, *batch))[1]
        return effects

    async def join(
        self, user_id: str, interests: frozenset[str], lang: str | None, now: int
    ) -> Outcome:
        # Sorted here, in Python's order, which a match's common interests keep; raw UTF-8,
        # so that cjson never has to decode an escaped surrogate pair.
        chosen = json.dumps(sorted(interests), ensure_ascii=False)
        return await self._command("join", now, user_id, chosen, lang or "")

    async def leave(self, user_id: str, now: int) -> Outcome:
        return await self._command("leave", now, user_id)

    async def skip(self, user_id: str, match_id: str, now: int) -> Outcome:
        return await self._command("skip", now, user_id, match_id)

    async def end(self, user_id: str, match_id: str, now: int, *, block: bool = False) -> Outcome:
        return await self._command("end", now, user_id, match_id, "1" if block else "0")

    async def ack(self, user_id: str, match_id: str, now: int) -> Effects:
        return (await self._run("ack", now, user_id, match_id))[1]

    async def relay(
        self, user_id: str, match_id: str, message: dict[str, Any], now: int
    ) -> Effects:
        # The right to pass it on is the store's; the message goes along only to be handed to
        # the partner's node, should that be another.
        stamped = {**message, "match_id": match_id, "ts": now}
        (partner_id, node_id, order), _ = await self._run(
            "relay", now, user_id, match_id, message["type"], _json(stamped)
        )
        return [fx.Send(partner_id, node_id, stamped, order)]

    async def media_lost(self, user_id: str, match_id: str, now: int) -> Effects:
        return (await self._run("media_lost", now, user_id, match_id))[1]

    async def media_gone(self, user_id: str, match_id: str, now: int) -> Effects:
        return (await self._run("media_gone", now, user_id, match_id))[1]

    async def media_absent(self, match_id: str, present: Sequence[str], now: int) -> Effects:
        return (await self._run("media_absent", now, match_id, *present))[1]

    async def note_media_change(self, match_id: str, now: int) -> None:
        # Beside the match's hash, not in it: a write after the call ended must not recreate it.
        key = self.keys.key("media_changed", match_id)
        await self._plain("note_media_change", self.client.set(key, now, px=MEDIA_CHANGE_TTL_MS))

    async def media_changed_at(self, match_id: str) -> int | None:
        if not await self.live_matches([match_id]):
            return None
        key = self.keys.key("media_changed", match_id)
        at = await self._plain("media_changed_at", self.client.get(key))
        return int(at) if at is not None else None

    async def live_matches(self, match_ids: Iterable[str]) -> set[str]:
        ids = list(match_ids)
        async with self.client.pipeline(transaction=False) as pipe:
            for match_id in ids:
                pipe.exists(self.keys.key("match", match_id))
            async with self._gate.slot("live_matches"):
                found = await pipe.execute()
        return {m for m, exists in zip(ids, found, strict=True) if exists}

    async def population(self) -> dict[str, int]:
        counts = dict.fromkeys(("idle", "queued", "proposed", "in_call"), 0)
        raw = await self._plain("population", self.client.hgetall(self.keys.key("population")))
        for status, n in raw.items():  # bytes from a client without decode_responses
            counts[status.decode() if isinstance(status, bytes) else status] = int(n)
        return counts

    async def claim_duty(self, name: str, every_ms: int, now: int) -> bool:
        key = self.keys.key("duty", name)
        claimed = await self._plain("claim_duty", self.client.set(key, now, nx=True, px=every_ms))
        return bool(claimed)

    async def expire(self, now: int) -> Effects:
        return (await self._run("expire", now, self._expire_batch))[1]

    async def sweep_stale(self, now: int) -> Effects:
        return (await self._run("sweep_stale", now, self._sweep_batch))[1]

    async def next_deadline(self) -> int | None:
        (at,), _ = await self._run("next_deadline", 0)
        return int(at) if at is not None else None

    async def snapshot(self, user_id: str, now: int) -> StateView:
        reply, _ = await self._run("snapshot", now, user_id)
        state, match_users = codec.state(reply)
        return StateView(state, match_users)

    async def queue_status(
        self, user_ids: Iterable[str], now: int
    ) -> dict[str, tuple[int, int | None, int]]:
        ids = list(user_ids)
        if not ids:
            return {}
        flat, _ = await self._run("queue_status", now, *ids)
        return {flat[i]: (flat[i + 1], flat[i + 2], flat[i + 3]) for i in range(0, len(flat), 4)}

    async def ban(self, user_id: str, until: int | None, now: int) -> Effects:
        return (await self._run("ban", now, user_id, 0 if until is None else until))[1]

    async def unban(self, user_id: str, now: int) -> None:
        await self._run("unban", now, user_id)

    async def unblock(self, blocker: str, blocked: str) -> None:
        await self._run("unblock", 0, blocker, blocked)

    async def load_blocks(self, pairs: Iterable[tuple[str, str]]) -> None:
        for batch in _batches(pairs, self._load_batch):
            async with self.client.pipeline(transaction=False) as pipe:
                for blocker, blocked in batch:
                    pipe.sadd(self.keys.key("blocks", blocker), blocked)
                await self._execute(pipe, "load_blocks")

    async def load_bans(self, bans: Mapping[str, int | None]) -> None:
        bans_key, ends_key = self.keys.key("bans"), self.keys.key("ban_ends")
        for batch in _batches(bans.items(), self._load_batch):
            async with self.client.pipeline(transaction=False) as pipe:
                for user_id, until in batch:  # as ban.lua records one
                    pipe.hset(bans_key, user_id, 0 if until is None else until)
                    if until is None:
                        pipe.zrem(ends_key, user_id)
                    else:
                        pipe.zadd(ends_key, {user_id: until})
                await self._execute(pipe, "load_bans")

    async def load_skip_penalties(self, records: Mapping[str, tuple[list[int], int, int]]) -> None:
        for batch in _batches(records.items(), self._load_batch):
            args: list[str | int] = []
            for user_id, (skips, level, cooldown_until) in batch:
                args += [user_id, ",".join(str(t) for t in sorted(skips)), level, cooldown_until]
            await self._run("load_skips", 0, *args)

    async def _plain(self, what: str, request: Awaitable[_T]) -> _T:
        """One plain Redis command (no transition), its failure as StoreUnavailable."""
        async with self._gate.slot(what):
            return await request

    async def _execute(self, pipe: Any, what: str) -> None:
        async with self._gate.slot(what):
            await pipe.execute()

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except RedisError as exc:
            raise StoreUnavailable(f"redis: close failed: {exc}") from exc


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """`items` in lists of at most `size` (itertools.batched, which Python 3.11 lacks)."""
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch
