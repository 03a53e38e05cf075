"""The store contract, run against every backend: each test states one promise of the
`Store` interface in a situation small enough to read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pairline.core import effects as fx
from pairline.core.protocol import CloseCode
from pairline.core.rules import Rules
from pairline.errors import Cooldown, InvalidState, NotFound, ProtocolError
from pairline.store.base import Effects, Store
from tests.store.conftest import StoreFactory

T0 = 1_000_000
NEEDS, IS = "needs status ", "but the user is "
RULES = Rules(rematch_after_ms=0, interest_wait_ms=5000)


def messages(effects: Effects, kind: str) -> dict[str, dict[str, Any]]:
    """The messages of type `kind` in `effects`, by receiving user."""
    return {
        e.user_id: e.message
        for e in effects
        if isinstance(e, fx.Send) and e.message["type"] == kind
    }


async def hello(store: Store, *user_ids: str, now: int = T0, node: str = "n1") -> None:
    for user_id in user_ids:
        attached = await store.attach(user_id, user_id.upper(), node, f"s-{user_id}", now)
        assert attached.fresh


async def in_call(store: Store, a: str, b: str, now: int = T0) -> str:
    """Bring a and b (attached, idle) into one confirmed call; return its match id."""
    await store.join(a, frozenset(), None, now)
    effects = (await store.join(b, frozenset(), None, now)).effects
    match_id: str = messages(effects, "matched")[a]["match_id"]
    assert await store.ack(a, match_id, now) == []
    confirmed = await store.ack(b, match_id, now)
    assert [type(e) for e in confirmed] == [fx.Confirmed]
    return match_id


async def view(store: Store, user_ids: list[str], now: int) -> Any:
    snapshots = [(await store.snapshot(u, now)) for u in user_ids]
    return snapshots, await store.queue_status(user_ids, now), await store.next_deadline()


async def test_the_longest_waiting_compatible_user_is_paired_first(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", "b", "c", "d")
    reply = (await store.join("a", frozenset(), "fr", T0)).reply
    assert reply == {"position": 1, "eta_ms": None}
    reply = (await store.join("b", frozenset(), "en", T0)).reply  # the same ms: still behind a
    assert reply == {"position": 2, "eta_ms": None}

    effects = (
        await store.join("c", frozenset(), "en", T0 + 1)
    ).effects  # a speaks another language
    matched = messages(effects, "matched")
    assert matched["b"]["partner"] == {"user_id": "c", "display_name": "C", "common_interests": []}
    assert matched["c"]["partner"]["user_id"] == "b"
    assert (await store.snapshot("a", T0 + 1)).state["position"] == 1

    effects = (await store.join("d", frozenset(), None, T0 + 2)).effects
    assert messages(effects, "matched")["d"]["partner"]["user_id"] == "a"
    await store.ack("a", messages(effects, "matched")["a"]["match_id"], T0 + 2)
    confirmed = await store.ack("d", messages(effects, "matched")["d"]["match_id"], T0 + 2)
    assert isinstance(confirmed[0], fx.Confirmed)
    assert confirmed[0].match.users == ("a", "d")  # the longer waiting one offers
    assert confirmed[0].match.tickets == {"d": (T0 + 2) * 1000, "a": T0 * 1000}


async def test_real_clock_tickets_stay_exact(stores: StoreFactory) -> None:
    now = 1_800_000_000_123  # ms in 2027: tickets near 1.8e15 still fit a double exactly
    store = stores(RULES)
    await hello(store, "a", "b", now=now)
    await store.join("a", frozenset(), None, now)
    effects = (await store.join("b", frozenset(), None, now)).effects
    match_id = messages(effects, "matched")["a"]["match_id"]
    await store.ack("a", match_id, now)
    (confirmed,) = await store.ack("b", match_id, now)
    assert isinstance(confirmed, fx.Confirmed)
    assert confirmed.match.tickets == {"a": now * 1000, "b": now * 1000 + 1}
    assert confirmed.match.confirmed_at == now


async def test_a_rolled_back_proposal_returns_the_healthy_side_to_its_place(
    stores: StoreFactory,
) -> None:
    store = stores(RULES)
    await hello(store, "a", "b", "c", "d")
    await store.join("a", frozenset(), "fr", T0)
    await store.join("b", frozenset(), "en", T0 + 1)
    effects = (await store.join("c", frozenset(), "en", T0 + 2)).effects
    match_id = messages(effects, "matched")["c"]["match_id"]
    reply = (await store.join("d", frozenset(), "de", T0 + 3)).reply
    assert reply["position"] == 2  # a, then d: b and c are out of the queue

    await store.ack("c", match_id, T0 + 4)  # b never acks
    deadline = T0 + 2 + RULES.ack_timeout_ms
    assert await store.next_deadline() == deadline
    effects = await store.expire(deadline)
    cancelled = messages(effects, "match_cancelled")
    assert cancelled["c"] == {
        "type": "match_cancelled",
        "match_id": match_id,
        "reason": "ack_timeout",
        "requeued": True,
        "position": 2,  # its old place: before d, who joined after it
    }
    assert cancelled["b"]["requeued"] is False
    statuses = await store.queue_status(["a", "b", "c", "d"], deadline)
    # (position, eta, events so far): c was told `matched`, then `match_cancelled`.
    assert statuses == {"a": (1, None, 0), "c": (2, None, 2), "d": (3, None, 0)}
    assert (await store.snapshot("b", deadline)).state["status"] == "idle"


async def test_skip_requeues_the_partner_before_the_skipper(stores: StoreFactory) -> None:
    store = stores(Rules(rematch_after_ms=60_000))
    await hello(store, "a", "b")
    match_id = await in_call(store, "a", "b")
    outcome = await store.skip("a", match_id, T0 + 10)
    reply, effects = outcome.reply, outcome.effects
    # One pairing in the last minute: position 2 is two minutes away.
    assert reply == {"requeued": True, "position": 2, "eta_ms": 120_000}
    assert messages(effects, "partner_left")["b"] == {
        "type": "partner_left",
        "match_id": match_id,
        "reason": "skipped",
        "requeued": True,
        "position": 1,
    }
    ended = [e for e in effects if isinstance(e, fx.CallEnded)]
    assert [(e.match.end_reason, e.match.ended_by, e.match.ended_at) for e in ended] == [
        ("skipped", "a", T0 + 10)
    ]
    assert messages(effects, "matched") == {}  # they just met: not paired again


async def test_refused_commands_change_nothing(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", "b", "c")
    match_id = await in_call(store, "a", "b")
    await store.join("c", frozenset({"x"}), None, T0)
    users = ["a", "b", "c"]
    before = await view(store, users, T0)

    chat = {"type": "chat", "text": "hi"}
    refusals: list[tuple[Callable[[], Awaitable[Any]], type[ProtocolError], str]] = [
        (
            lambda: store.join("c", frozenset(), None, T0),
            InvalidState,
            f"join {NEEDS}idle, {IS}queued",
        ),
        (
            lambda: store.join("ghost", frozenset(), None, T0),
            InvalidState,
            "no session for this user",
        ),
        (lambda: store.skip("c", match_id, T0), InvalidState, f"skip {NEEDS}in_call, {IS}queued"),
        (lambda: store.skip("a", "m_404", T0), NotFound, "m_404 is not your current match"),
        (
            lambda: store.end("a", "m_404", T0, block=True),
            NotFound,
            "m_404 is not your current match",
        ),
        (
            lambda: store.leave("a", T0),
            InvalidState,
            f"leave {NEEDS}queued or proposed, {IS}in_call",
        ),
        (
            lambda: store.relay("c", match_id, chat, T0),
            InvalidState,
            f"chat {NEEDS}in_call, {IS}queued",
        ),
        (lambda: store.media_lost("a", "m_404", T0), NotFound, "m_404 is not your current match"),
    ]
    for call, error, message in refusals:
        with pytest.raises(error) as raised:
            await call()
        assert raised.value.message == message
    assert chat == {"type": "chat", "text": "hi"}  # not stamped for relaying either
    assert await view(store, users, T0) == before


async def test_the_skip_that_reaches_the_limit_starts_a_cooldown(stores: StoreFactory) -> None:
    store = stores(Rules(rematch_after_ms=0, skip_limit=2, cooldowns_ms=(60_000, 300_000)))
    await hello(store, "a", "b")
    first = await in_call(store, "a", "b")
    outcome = await store.skip("a", first, T0 + 1)
    reply, effects = outcome.reply, outcome.effects
    assert reply["requeued"] is True
    second = messages(effects, "matched")["a"]["match_id"]  # paired again at once
    await store.ack("a", second, T0 + 2)
    await store.ack("b", second, T0 + 2)

    outcome = await store.skip("a", second, T0 + 3)
    reply, effects = outcome.reply, outcome.effects
    assert reply == {"requeued": False, "position": None, "eta_ms": None, "cooldown_ms": 60_000}
    assert messages(effects, "partner_left")["b"]["requeued"] is True
    with pytest.raises(Cooldown) as raised:
        await store.join("a", frozenset(), None, T0 + 4)
    assert (raised.value.message, raised.value.retry_after_ms) == (
        "skipping too often; try again in 60 s",
        59_999,
    )
    assert (await store.snapshot("a", T0 + 4)).state["cooldown_ms"] == 59_999
    for user in ("a", "b"):  # else a minute's silence gets them health-checked first
        await store.heard(user, T0 + 3 + 60_000)
    outcome = await store.join("a", frozenset(), None, T0 + 3 + 60_000)
    reply, effects = outcome.reply, outcome.effects
    assert reply == {"position": 2, "eta_ms": None}  # behind b; no pairing in the last minute
    assert messages(effects, "matched")["a"]["partner"]["user_id"] == "b"


async def test_blocked_users_are_never_paired_either_way(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", "b", "c")
    match_id = await in_call(store, "a", "b")
    outcome = await store.end("a", match_id, T0 + 1, block=True)
    reply, effects = outcome.reply, outcome.effects
    assert reply == {}
    assert fx.Blocked("a", "b", match_id) in effects
    assert messages(effects, "partner_left")["b"]["reason"] == "ended"

    effects = (await store.join("a", frozenset(), None, T0 + 2)).effects  # a joins while b waits
    assert messages(effects, "matched") == {}
    await store.leave("a", T0 + 3)
    await store.leave("b", T0 + 3)
    await store.join("a", frozenset(), None, T0 + 4)
    effects = (await store.join("b", frozenset(), None, T0 + 5)).effects  # b joins while a waits
    assert messages(effects, "matched") == {}
    effects = (await store.join("c", frozenset(), None, T0 + 6)).effects
    assert messages(effects, "matched")["c"]["partner"]["user_id"] == "a"


async def test_a_deadline_completes_once(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", "b")
    await store.join("a", frozenset(), None, T0)
    await store.join("b", frozenset(), None, T0)
    due = T0 + RULES.ack_timeout_ms
    assert await store.next_deadline() == due
    assert await store.expire(due - 1) == []
    effects = await store.expire(due)
    assert [e.reason for e in effects if isinstance(e, fx.MatchFailed)] == ["ack_timeout"]
    assert set(messages(effects, "match_cancelled")) == {"a", "b"}
    assert await store.expire(due) == []
    assert await store.next_deadline() is None


async def test_a_quiet_user_is_health_checked_before_the_proposal(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", now=T0)
    await store.join("a", frozenset(), None, T0)
    later = T0 + RULES.health_fresh_ms + 1
    await hello(store, "b", now=later)
    effects = (await store.join("b", frozenset(), None, later)).effects
    assert effects == [fx.Probe("a", "n1"), fx.WakeAt(later + RULES.health_timeout_ms)]
    for user in ("a", "b"):  # not told yet: "queued", next in line
        state = (await store.snapshot(user, later)).state
        assert (state["status"], state["position"], state["match"]) == ("queued", 1, None)
    effects = await store.heard("a", later + 5)
    assert set(messages(effects, "matched")) == {"a", "b"}


async def test_heard_many_answers_each_users_health_check_in_turn(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", "c", now=T0)
    await store.join("a", frozenset(), "en", T0)
    await store.join("c", frozenset(), "fr", T0 + 1)  # (not a's language: both wait)
    later = T0 + RULES.health_fresh_ms + 2
    await hello(store, "b", "d", now=later)
    for user, quiet, lang in (("b", "a", "en"), ("d", "c", "fr")):
        effects = (await store.join(user, frozenset(), lang, later)).effects
        assert [e for e in effects if isinstance(e, fx.Probe)] == [fx.Probe(quiet, "n1")]
    effects = await store.heard_many(["ghost", "a", "c"], later + 5)  # one call, three users
    assert set(messages(effects, "matched")) == {"a", "b", "c", "d"}
    for user in ("a", "c"):
        assert (await store.snapshot(user, later + 5)).state["status"] == "proposed"


async def test_chat_passes_only_within_the_call(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", "b")
    match_id = await in_call(store, "a", "b")
    effects = await store.relay("a", match_id, {"type": "chat", "text": "hi"}, T0 + 7)
    assert effects == [
        # b's third event, after `matched` and its confirmation
        fx.Send("b", "n1", {"type": "chat", "text": "hi", "match_id": match_id, "ts": T0 + 7}, 3)
    ]
    await store.end("b", match_id, T0 + 8)
    with pytest.raises(NotFound, match=f"{match_id} is over"):
        await store.relay("a", match_id, {"type": "chat", "text": "late"}, T0 + 9)


async def test_a_lost_node_detaches_its_users(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", node="n1")
    await hello(store, "b", node="n2")
    match_id = await in_call(store, "a", "b")
    effects = await store.node_lost("n1", T0 + 1)
    window = RULES.resume_window_ms
    assert messages(effects, "partner_reconnecting") == {
        "b": {"type": "partner_reconnecting", "match_id": match_id, "grace_ms": window}
    }
    effects = await store.expire(T0 + 1 + window)
    assert messages(effects, "partner_left")["b"]["reason"] == "disconnected"
    assert fx.EndSession("a", "n1", "s-a", None) in effects
    assert (await store.snapshot("a", T0 + 1 + window)).state["status"] == "idle"


async def test_a_hello_through_another_node_takes_the_session_over(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", node="n1")
    attached = await store.attach("a", "A", "n2", "s-new", T0 + 1)
    assert (attached.session_id, attached.fresh) == ("s-a", False)
    assert attached.effects == [fx.EndSession("a", "n1", "s-a", CloseCode.REPLACED)]
    effects = await store.node_lost("n1", T0 + 2)  # it is n2's user now
    assert effects == []


async def test_media_gone_ends_the_call_at_once_only_if_the_connection_is_gone_too(
    stores: StoreFactory,
) -> None:
    store = stores(RULES)
    await hello(store, "a", "b")
    match_id = await in_call(store, "a", "b")
    # Still connected: a health check now, the call goes on until it fails.
    effects = await store.media_gone("a", match_id, T0 + 1)
    assert [type(e) for e in effects] == [fx.Probe, fx.WakeAt]
    await store.heard("a", T0 + 2)
    # Connection gone (its resume window just began): the call ends now, as `disconnected`.
    await store.detach("a", "s-a", T0 + 3)
    effects = await store.media_gone("a", match_id, T0 + 4)
    left = messages(effects, "partner_left")["b"]
    assert (left["match_id"], left["reason"], left["requeued"]) == (match_id, "disconnected", True)
    assert [e.match.end_reason for e in effects if isinstance(e, fx.CallEnded)] == ["disconnected"]
    assert await store.media_gone("a", match_id, T0 + 5) == []  # over: nothing more


async def test_alone_in_the_room_ends_the_call_and_requeues_the_one_who_waited_first(
    stores: StoreFactory,
) -> None:
    store = stores(RULES)
    await hello(store, "a", "b")
    match_id = await in_call(store, "a", "b")
    assert await store.media_absent(match_id, ["a", "b"], T0 + 1) == []  # both there
    effects = await store.media_absent(match_id, ["b"], T0 + 2)  # a never came
    told = messages(effects, "partner_left")
    assert {u: (m["reason"], m["requeued"]) for u, m in told.items()} == {
        "b": ("disconnected", True),
        "a": ("disconnected", True),
    }
    assert told["b"]["position"] == 1 and told["a"]["position"] == 2  # b waited in the room
    [ended] = [e.match for e in effects if isinstance(e, fx.CallEnded)]
    assert (ended.end_reason, ended.ended_by) == ("alone_in_room", "a")
    assert await store.media_absent(match_id, [], T0 + 3) == []  # over: nothing more


async def test_a_closed_room_ends_its_call_and_an_away_user_ends_as_its_window_would(
    stores: StoreFactory,
) -> None:
    store = stores(RULES)
    await hello(store, "a", "b", "c", "d")
    match_id = await in_call(store, "a", "b")
    effects = await store.media_absent(match_id, [], T0 + 1)
    [ended] = [e.match for e in effects if isinstance(e, fx.CallEnded)]
    assert (ended.end_reason, ended.ended_by) == ("room_closed", None)
    assert set(messages(effects, "partner_left")) == {"a", "b"}
    # A missing user whose connection is gone: its session ends, the other is re-queued.
    match_id = await in_call(store, "c", "d")
    await store.detach("d", "s-d", T0 + 2)
    effects = await store.media_absent(match_id, ["c"], T0 + 3)
    assert set(messages(effects, "partner_left")) == {"c"}
    assert fx.EndSession("d", "n1", "s-d", None) in effects
