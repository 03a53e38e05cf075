"""The store interface: one atomic transition per method, and the factory keyed on the URL.

Every method either raises a `ProtocolError` having changed nothing, or performs its whole
transition and returns the effects to carry out. Backends: `memory` (the embedded default) and,
when `REDIS_URL` is set, `redis`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pairline.core.effects import Effect, Send
from pairline.core.rules import Rules
from pairline.settings import REDIS_POOL_TIMEOUT_S, Settings

Effects = list[Effect]
Reply = dict[str, Any]

REDIS_MAX_CONNECTIONS = 64  # per node; transitions are short scripts


@dataclass(frozen=True, slots=True)
class StateView:
    """A user's §4 snapshot, plus the users of its match (for the media description)."""

    state: dict[str, Any]
    match_users: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class Attached:
    session_id: str
    fresh: bool
    effects: Effects
    order: int  # the user's event order after this transition (a new session's starting point)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A command's result. `order` is the user's event order once it ran: events before this
    command's own may still be on their way from other nodes, and its reply must not overtake
    them (see `order_before`)."""

    reply: Reply
    effects: Effects
    order: int


def order_before(effects: Effects, user_id: str, order_after: int) -> int:
    """The user's event order before a transition's own events to it: those follow its reply
    (or welcome), while every earlier event must come before that."""
    own = [e.order for e in effects if isinstance(e, Send) and e.user_id == user_id]
    return min(own) - 1 if own else order_after


class Store(Protocol):
    """Queue and match state; each method is one atomic transition."""

    def overloaded(self) -> bool:
        """So many of this node's transitions wait for the backend that new work (a `join`)
        should be turned away with `rate_limited` now rather than fail after the pool timeout.
        Transitions already under way (acks, ends, clocks) are never refused for it."""

    def shed_turn_ms(self) -> int:
        """How long a join turned away now should wait before it comes back (its
        `retry_after_ms`): the joins shed in one burst are given turns spread over the time
        the store needs for them, so that they do not all return into the same swamp."""

    async def attach(
        self, user_id: str, display_name: str, node_id: str, new_session_id: str, now: int
    ) -> Attached:
        """A hello: continue the user's session (back online) or open a new one.

        Raises `Banned` (with `retry_after_ms` when the ban has an end) while the user is
        banned: the gateway closes that connection with 4403."""

    async def renew_session(self, user_id: str, session_id: str) -> None:
        """Give the user's session a new id (a client too far behind to replay)."""

    async def detach(self, user_id: str, session_id: str, now: int) -> Effects:
        """The session's connection dropped: start its resume window."""

    async def node_lost(self, node_id: str, now: int) -> Effects:
        """A node died: every user connected there is detached (its resume window starts)."""

    async def heard(self, user_id: str, now: int) -> Effects:
        """The user sent something: it is alive (answers a pending health check)."""

    async def heard_many(self, user_ids: Sequence[str], now: int) -> Effects:
        """`heard` for each user in turn, as one call (a node's pongs of one moment)."""

    async def join(
        self, user_id: str, interests: frozenset[str], lang: str | None, now: int
    ) -> Outcome:
        """idle → queued, paired at once with the longest-waiting compatible user if any.

        Refused with `Banned` while the user is banned, `Cooldown` while it cools down."""

    async def leave(self, user_id: str, now: int) -> Outcome:
        """queued → idle, or cancel the user's proposal."""

    async def skip(self, user_id: str, match_id: str, now: int) -> Outcome:
        """End the call; both re-queued (the skipper unless its cool-down starts)."""

    async def end(self, user_id: str, match_id: str, now: int, *, block: bool = False) -> Outcome:
        """End the call; the user goes idle, the partner is re-queued; optionally block it."""

    async def ack(self, user_id: str, match_id: str, now: int) -> Effects:
        """The user acked `matched`; the second ack confirms the match."""

    async def relay(
        self, user_id: str, match_id: str, message: dict[str, Any], now: int
    ) -> Effects:
        """Pass `chat` or `signal` to the partner in the user's current call."""

    async def media_lost(self, user_id: str, match_id: str, now: int) -> Effects:
        """Health-check the partner now."""

    async def media_gone(self, user_id: str, match_id: str, now: int) -> Effects:
        """The media server saw the user leave the call's room: end the call now if the user's
        connection is gone too, else health-check the user now."""

    async def media_absent(self, match_id: str, present: Sequence[str], now: int) -> Effects:
        """The call's media room has held only `present` for too long (one user alone, or the
        room closed empty): end the call, both re-queued (see `Matchmaker.media_absent`)."""

    async def note_media_change(self, match_id: str, now: int) -> None:
        """Someone joined or left the call's media room at `now` (any node may hear of it)."""

    async def media_changed_at(self, match_id: str) -> int | None:
        """When the call's media room last changed, as noted; None if never or the call is over."""

    async def live_matches(self, match_ids: Iterable[str]) -> set[str]:
        """Those of these matches that are not over (proposed, checked or in a call)."""

    async def population(self) -> dict[str, int]:
        """Users with a session, by status (idle, queued, proposed, in_call)."""

    async def claim_duty(self, name: str, every_ms: int, now: int) -> bool:
        """True for exactly one caller across all nodes per `every_ms`: a periodic job (the
        media room sweep) runs once per period, not once per node."""

    async def expire(self, now: int) -> Effects:
        """Complete every deadline due at `now`."""

    async def sweep_stale(self, now: int) -> Effects:
        """Remove users whose open connection stopped answering."""

    async def next_deadline(self) -> int | None:
        """When the earliest deadline falls due (epoch ms), or None."""

    async def snapshot(self, user_id: str, now: int) -> StateView:
        """The user's full state."""

    async def queue_status(
        self, user_ids: Iterable[str], now: int
    ) -> dict[str, tuple[int, int | None, int]]:
        """(position, eta_ms, event order) of those of these users who are queued."""

    async def ban(self, user_id: str, until: int | None, now: int) -> Effects:
        """Ban the user until `until` (epoch ms; None: for good), replacing any ban it has.

        While the ban lasts (until > now), `attach` and `join` raise `Banned`. It acts at once:
        - queued: out of the queue, told `queue_cancelled{reason: banned}`;
        - proposed: the proposal is cancelled as when the user leaves (the partner is told
          `match_cancelled{reason: partner_left}` and keeps its place in the queue);
        - in a call: the call ends (`CallEnded`, end_reason "banned", ended_by the user) and the
          partner is told `partner_left{reason: ended}` and re-queued, as after `end`;
        - with a session: `EndSession` with close code 4403, and the user's state is gone.
        A user without a session (or a ban already over at `now`) is only recorded.
        """

    async def unban(self, user_id: str, now: int) -> None:
        """Lift the user's ban, if it has one."""

    async def unblock(self, blocker: str, blocked: str) -> None:
        """Lift the block `blocker` set on `blocked` (`end(..., block=True)`); only that
        direction: a block the other way stays."""

    async def load_blocks(self, pairs: Iterable[tuple[str, str]]) -> None:
        """At start-up, from the records: add these (blocker, blocked) blocks. Idempotent."""

    async def load_bans(self, bans: Mapping[str, int | None]) -> None:
        """At start-up, from the records: record these bans (user → until; None: for good),
        replacing the store's ban of the same user (the records are the authority on bans).
        Bans the store holds for other users stay. Idempotent. Nobody is removed from queue
        or call: a loaded ban refuses the user's next hello and join (`ban` acts at once)."""

    async def load_skip_penalties(self, records: Mapping[str, tuple[list[int], int, int]]) -> None:
        """At start-up, from the records: user → (skip times, level, cooldown_until), as
        `SkipPenaltyChanged` carried them. A user the store already has a skip record for keeps
        it: the store's is as new as the recorded one, or newer. Idempotent."""

    async def close(self) -> None:
        """Release connections."""


def open_store(settings: Settings, rules: Rules) -> Store:
    """The backend `REDIS_URL` names: unset → in-process memory."""
    if settings.redis_url:
        import redis.asyncio as aioredis

        from pairline.store.redis import RedisStore

        # A blocking pool: a burst past its size waits for a free connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=REDIS_MAX_CONNECTIONS,
            timeout=REDIS_POOL_TIMEOUT_S,
        )
        client = aioredis.Redis.from_pool(pool)  # the client owns the pool: close() closes it
        return RedisStore(
            client,
            rules,
            prefix=settings.redis_prefix,
            node_id=settings.node_id,
            min_pending=settings.redis_max_pending,
            max_wait_s=settings.redis_max_wait_ms / 1000,
        )
    from pairline.store.memory import MemoryStore

    return MemoryStore(rules)
