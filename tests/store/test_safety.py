"""The store contract for safety and durability, run against every backend: bans act at once in
every state and refuse hello and join while they last; unban and unblock undo; the start-up
loaders make blocks, bans and skip penalties effective; and every change of a skip record is
emitted as `SkipPenaltyChanged`, after the transition's other effects."""

from __future__ import annotations

import pytest

from pairline.core import effects as fx
from pairline.core.protocol import CloseCode
from pairline.core.rules import Rules
from pairline.errors import Banned, Cooldown
from pairline.store.base import Store
from tests.store.conftest import StoreFactory
from tests.store.test_contract import RULES, T0, hello, in_call, messages

SKIPPY = Rules(rematch_after_ms=0, skip_limit=2, cooldowns_ms=(60_000, 300_000))


def banned_close(user_id: str, node: str = "n1") -> fx.EndSession:
    return fx.EndSession(user_id, node, f"s-{user_id}", CloseCode.BANNED)


async def assert_refused(store: Store, user_id: str, now: int, retry_after_ms: int | None) -> None:
    """The user's hello is refused with `banned` (and the time left, if the ban ends)."""
    with pytest.raises(Banned) as raised:
        await store.attach(user_id, user_id.upper(), "n1", f"s2-{user_id}", now)
    assert raised.value.code == "banned"
    assert raised.value.retry_after_ms == retry_after_ms
    if retry_after_ms is None:
        assert raised.value.message == "you are banned"
    else:
        seconds = retry_after_ms // 1000 + 1
        assert raised.value.message == f"you are banned; try again in {seconds} s"


async def pairs_now(store: Store, a: str, b: str, now: int) -> bool:
    """Both idle and attached: join a, then b; whether they were paired."""
    await store.join(a, frozenset(), None, now)
    effects = (await store.join(b, frozenset(), None, now)).effects
    matched = messages(effects, "matched").get(b)
    paired = matched is not None and matched["partner"]["user_id"] == a
    for user in (a, b):
        if (await store.snapshot(user, now)).state["status"] != "idle":
            await store.leave(user, now)
    return bool(paired)


# ---------------------------------------------------------------------- ban, in every state


async def test_banning_a_user_without_a_session_only_records_the_ban(stores: StoreFactory) -> None:
    store = stores(RULES)
    assert await store.ban("ghost", None, T0) == []
    await assert_refused(store, "ghost", T0 + 1, None)
    assert (await store.snapshot("ghost", T0 + 1)).state["status"] == "idle"


async def test_banning_an_idle_user_closes_its_session_with_4403(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a")
    assert await store.ban("a", T0 + 60_000, T0) == [banned_close("a")]
    await assert_refused(store, "a", T0 + 1, 59_999)
    # Its state is gone: it cannot resume, and nothing of it is left behind.
    assert await store.next_deadline() is None
    assert await store.detach("a", "s-a", T0 + 2) == []
    assert await store.node_lost("n1", T0 + 2) == []


async def test_banning_a_queued_user_takes_it_out_of_the_queue(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", "b")
    await store.join("a", frozenset(), "fr", T0)
    await store.join("b", frozenset(), "en", T0)
    effects = await store.ban("a", None, T0 + 1)
    assert effects == [
        fx.Send("a", "n1", {"type": "queue_cancelled", "reason": "banned"}, 1),
        banned_close("a"),
    ]
    assert await store.queue_status(["a", "b"], T0 + 1) == {"b": (1, None, 0)}
    await assert_refused(store, "a", T0 + 2, None)


async def test_banning_a_queued_user_cancels_its_interest_wait(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a")
    effects = (await store.join("a", frozenset({"x"}), None, T0)).effects
    assert effects == [fx.WakeAt(T0 + RULES.interest_wait_ms)]
    await store.ban("a", None, T0 + 1)
    assert await store.next_deadline() is None


async def test_banning_a_proposed_user_returns_the_partner_to_its_place(
    stores: StoreFactory,
) -> None:
    store = stores(RULES)
    await hello(store, "a", "b", "c")
    await store.join("c", frozenset(), "fr", T0)  # waits, but speaks another language
    await store.join("a", frozenset(), "en", T0 + 1)
    effects = (await store.join("b", frozenset(), "en", T0 + 2)).effects
    match_id = messages(effects, "matched")["a"]["match_id"]
    await store.ack("a", match_id, T0 + 3)

    effects = await store.ban("b", None, T0 + 4)
    assert [type(e) for e in effects] == [fx.MatchFailed, fx.Send, fx.EndSession]
    failed = effects[0]
    assert isinstance(failed, fx.MatchFailed)
    assert (failed.reason, failed.match.match_id) == ("banned", match_id)
    assert failed.detail["a"]["outcome"] == "partner_left"
    assert effects[1:] == [
        fx.Send(
            "a",
            "n1",
            {
                "type": "match_cancelled",
                "match_id": match_id,
                "reason": "partner_left",
                "requeued": True,
                "position": 2,  # its old place: behind c, who joined before it
            },
            2,
        ),
        banned_close("b"),
    ]
    assert await store.queue_status(["a", "b", "c"], T0 + 4) == {
        "c": (1, None, 0),
        "a": (2, None, 2),
    }
    await assert_refused(store, "b", T0 + 5, None)


async def test_banning_a_user_being_health_checked_tells_it_the_queue_is_over(
    stores: StoreFactory,
) -> None:
    store = stores(RULES)
    await hello(store, "a", now=T0)
    await store.join("a", frozenset(), None, T0)
    later = T0 + RULES.health_fresh_ms + 1
    await hello(store, "b", now=later)
    effects = (await store.join("b", frozenset(), None, later)).effects
    assert effects[0] == fx.Probe("a", "n1")  # a proposal being checked: a is not told yet

    effects = await store.ban("a", None, later + 1)
    assert [type(e) for e in effects] == [fx.Send, fx.MatchFailed, fx.Send, fx.EndSession]
    assert effects[0] == fx.Send("a", "n1", {"type": "queue_cancelled", "reason": "banned"}, 1)
    assert messages(effects, "match_cancelled")["b"]["requeued"] is True
    assert effects[-1] == banned_close("a")
    assert await store.queue_status(["a", "b"], later + 1) == {"b": (1, None, 1)}
    assert await store.next_deadline() is None  # the health check went with the proposal


async def test_banning_a_user_in_a_call_ends_it_and_requeues_the_partner(
    stores: StoreFactory,
) -> None:
    store = stores(RULES)
    await hello(store, "a")
    await hello(store, "b", node="n2")
    match_id = await in_call(store, "a", "b")
    effects = await store.ban("a", T0 + 3_600_000, T0 + 10)
    assert [type(e) for e in effects] == [fx.CallEnded, fx.Send, fx.EndSession]
    ended = effects[0]
    assert isinstance(ended, fx.CallEnded)
    assert (ended.match.match_id, ended.match.end_reason, ended.match.ended_by) == (
        match_id,
        "banned",
        "a",
    )
    assert ended.match.ended_at == T0 + 10
    assert effects[1:] == [
        fx.Send(
            "b",
            "n2",
            {
                "type": "partner_left",
                "match_id": match_id,
                "reason": "ended",
                "requeued": True,
                "position": 1,
            },
            3,  # after `matched` and its confirmation
        ),
        banned_close("a"),
    ]
    state = (await store.snapshot("b", T0 + 10)).state
    assert (state["status"], state["position"]) == ("queued", 1)
    assert (await store.snapshot("a", T0 + 10)).state["status"] == "idle"
    await assert_refused(store, "a", T0 + 11, 3_600_000 - 11)


async def test_banning_an_away_user_ends_its_call_at_once(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", "b")
    match_id = await in_call(store, "a", "b")
    await store.detach("a", "s-a", T0 + 1)
    effects = await store.ban("a", None, T0 + 2)
    assert messages(effects, "partner_left")["b"]["match_id"] == match_id
    assert effects[-1] == banned_close("a")
    assert await store.expire(T0 + 2 + RULES.resume_window_ms) == []  # no resume window left


async def test_the_partner_of_a_banned_user_is_paired_again_at_once(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", "b", "c")
    await in_call(store, "a", "b")
    await store.join("c", frozenset(), None, T0 + 1)
    effects = await store.ban("a", None, T0 + 2)
    assert messages(effects, "matched")["b"]["partner"]["user_id"] == "c"
    assert effects[-1] == banned_close("a")


# ---------------------------------------------------------------------- while, and after


async def test_a_ban_refuses_only_while_it_lasts(stores: StoreFactory) -> None:
    store = stores(RULES)
    until = T0 + 5_000
    await store.ban("a", until, T0)
    await assert_refused(store, "a", T0, 5_000)
    await assert_refused(store, "a", until - 1, 1)
    attached = await store.attach("a", "A", "n1", "s-a", until)  # over
    assert attached.fresh
    assert (await store.join("a", frozenset(), None, until)).reply == {
        "position": 1,
        "eta_ms": None,
    }


async def test_a_ban_already_over_is_only_recorded(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a")
    await store.join("a", frozenset(), None, T0)
    assert await store.ban("a", T0, T0) == []
    assert (await store.snapshot("a", T0)).state["status"] == "queued"


async def test_a_later_ban_replaces_the_earlier(stores: StoreFactory) -> None:
    store = stores(RULES)
    await store.ban("a", None, T0)
    await store.ban("a", T0 + 2_000, T0)
    await assert_refused(store, "a", T0 + 1, 1_999)
    assert (await store.attach("a", "A", "n1", "s-a", T0 + 2_000)).fresh


async def test_unban_lifts_the_ban(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a")
    await store.ban("a", None, T0)
    await store.unban("a", T0 + 1)
    await store.unban("a", T0 + 1)  # nothing left to lift: no error
    await store.unban("nobody", T0 + 1)
    await hello(store, "a", now=T0 + 2)  # a fresh session
    assert (await store.join("a", frozenset(), None, T0 + 2)).reply["position"] == 1


async def test_the_sweep_forgets_bans_that_are_over(stores: StoreFactory) -> None:
    store = stores(RULES)
    await store.ban("a", T0 + 10, T0)
    await store.ban("b", None, T0)
    await store.sweep_stale(T0 + 10)
    assert (await store.attach("a", "A", "n1", "s-a", T0 + 10)).fresh
    await assert_refused(store, "b", T0 + 10, None)


async def test_a_loaded_ban_refuses_the_join_of_a_user_with_a_session(
    stores: StoreFactory,
) -> None:
    store = stores(RULES)
    await hello(store, "a", "b")
    await store.load_bans({"a": T0 + 90_000, "b": None})
    for user, retry in (("a", 90_000), ("b", None)):
        with pytest.raises(Banned) as raised:
            await store.join(user, frozenset(), None, T0)
        assert raised.value.retry_after_ms == retry
        await assert_refused(store, user, T0, retry)
    await store.load_bans({"a": T0 + 90_000, "b": None})  # idempotent
    await store.unban("a", T0)
    await store.join("a", frozenset(), None, T0)


async def test_loaded_bans_replace_those_the_store_has(stores: StoreFactory) -> None:
    store = stores(RULES)
    await store.ban("a", None, T0)
    await store.ban("b", T0 + 1_000, T0)
    await store.load_bans({"a": T0 + 1_000, "b": None})
    assert (await store.attach("a", "A", "n1", "s-a", T0 + 1_000)).fresh
    await assert_refused(store, "b", T0 + 1_000, None)


# ---------------------------------------------------------------------- blocks


async def test_unblock_lets_the_pair_meet_again(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", "b")
    match_id = await in_call(store, "a", "b")
    await store.end("a", match_id, T0 + 1, block=True)
    await store.leave("b", T0 + 1)
    assert not await pairs_now(store, "a", "b", T0 + 2)
    await store.unblock("b", "a")  # the other direction: there is no such block
    assert not await pairs_now(store, "a", "b", T0 + 3)
    await store.unblock("a", "b")
    assert await pairs_now(store, "a", "b", T0 + 4)


async def test_unblock_lifts_only_its_own_direction(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", "b")
    await store.load_blocks([("a", "b"), ("b", "a")])
    await store.unblock("a", "b")
    assert not await pairs_now(store, "a", "b", T0)  # b still blocks a
    await store.unblock("b", "a")
    assert await pairs_now(store, "a", "b", T0 + 1)


async def test_loaded_blocks_keep_the_pairs_apart(stores: StoreFactory) -> None:
    store = stores(RULES)
    await hello(store, "a", "b", "c")
    await store.load_blocks(iter([("c", "a")]))  # any iterable
    await store.load_blocks([("c", "a")])  # idempotent
    assert not await pairs_now(store, "a", "c", T0)
    assert not await pairs_now(store, "c", "a", T0 + 1)
    assert await pairs_now(store, "a", "b", T0 + 2)


async def test_the_loaders_take_many_items_at_once(stores: StoreFactory) -> None:
    store = stores(SKIPPY)
    many = [f"x{i}" for i in range(1_201)]  # more than one batch
    await store.load_blocks([("a", x) for x in [*many, "b"]])
    await store.load_bans({x: None for x in many})
    await store.load_skip_penalties({x: ([], 1, T0 + 1_000) for x in [*many, "c"]})
    await hello(store, "a", "b", "c")
    assert not await pairs_now(store, "a", "b", T0)
    await assert_refused(store, many[-1], T0, None)
    with pytest.raises(Cooldown):
        await store.join("c", frozenset(), None, T0)


# ---------------------------------------------------------------------- skip penalties


def penalties(effects: list[fx.Effect]) -> list[fx.SkipPenaltyChanged]:
    return [e for e in effects if isinstance(e, fx.SkipPenaltyChanged)]


async def test_every_counted_skip_is_emitted_last(stores: StoreFactory) -> None:
    store = stores(SKIPPY)
    await hello(store, "a", "b")
    first = await in_call(store, "a", "b")
    effects = (await store.skip("a", first, T0 + 1)).effects
    assert effects[-1] == fx.SkipPenaltyChanged("a", (T0 + 1,), 0, 0)
    assert penalties(effects) == [effects[-1]]
    second = messages(effects, "matched")["a"]["match_id"]  # paired again at once
    await store.ack("a", second, T0 + 2)
    await store.ack("b", second, T0 + 2)

    # The skip that reaches the limit starts the cool-down: the record says so.
    effects = (await store.skip("a", second, T0 + 3)).effects
    assert effects[-1] == fx.SkipPenaltyChanged("a", (), 1, T0 + 3 + 60_000)
    assert penalties(effects) == [effects[-1]]

    # A late skip of a call already over is not counted: nothing changes.
    assert penalties((await store.skip("a", second, T0 + 4)).effects) == []


async def test_a_good_call_forgives_and_says_so(stores: StoreFactory) -> None:
    store = stores(SKIPPY)
    await hello(store, "a", "b", "c")
    first = await in_call(store, "a", "b")
    effects = (await store.skip("a", first, T0 + 1)).effects  # a: one skip
    await store.leave("a", T0 + 1)
    await store.leave("b", T0 + 1)
    good = T0 + 2 + SKIPPY.good_call_ms
    for user in ("a", "c"):
        await store.heard(user, T0 + 2)
    call = await in_call(store, "a", "c", now=T0 + 2)
    for user in ("a", "c"):
        await store.heard(user, good)
    effects = (await store.end("c", call, good)).effects
    # c has no record: only a's changes, after everything else.
    assert effects[-1] == fx.SkipPenaltyChanged("a", (), 0, 0)
    assert penalties(effects) == [effects[-1]]

    # Forgiven already: another good call changes nothing, and says nothing.
    await store.leave("a", good)
    for user in ("a", "c"):
        await store.heard(user, good + 1)
    call = await in_call(store, "a", "c", now=good + 1)
    later = good + 1 + SKIPPY.good_call_ms
    assert penalties((await store.end("a", call, later)).effects) == []


async def test_a_skip_ending_a_good_call_forgives_then_counts(stores: StoreFactory) -> None:
    store = stores(SKIPPY)
    await hello(store, "a", "b")
    first = await in_call(store, "a", "b")
    await store.skip("a", first, T0 + 1)
    second = (await store.snapshot("a", T0 + 1)).state["match"]["match_id"]
    await store.ack("a", second, T0 + 1)
    await store.ack("b", second, T0 + 1)
    good = T0 + 1 + SKIPPY.good_call_ms
    for user in ("a", "b"):
        await store.heard(user, good)
    effects = (await store.skip("a", second, good)).effects
    # One change of a's record, emitted once, with its final value: forgiven, then this skip.
    assert penalties(effects) == [fx.SkipPenaltyChanged("a", (good,), 0, 0)]
    assert effects[-1] == penalties(effects)[0]


async def test_banning_a_user_after_a_good_call_emits_its_forgiveness_last(
    stores: StoreFactory,
) -> None:
    store = stores(SKIPPY)
    await hello(store, "a", "b")
    first = await in_call(store, "a", "b")
    await store.skip("b", first, T0 + 1)
    second = (await store.snapshot("a", T0 + 1)).state["match"]["match_id"]
    await store.ack("a", second, T0 + 1)
    await store.ack("b", second, T0 + 1)
    good = T0 + 1 + SKIPPY.good_call_ms
    effects = await store.ban("a", None, good)
    assert [type(e) for e in effects] == [
        fx.CallEnded,
        fx.Send,
        fx.EndSession,
        fx.SkipPenaltyChanged,
    ]
    assert effects[-1] == fx.SkipPenaltyChanged("b", (), 0, 0)


async def test_loaded_skip_penalties_carry_on(stores: StoreFactory) -> None:
    store = stores(SKIPPY)
    await hello(store, "a", "b", "c")
    await store.load_skip_penalties(
        {
            "a": ([T0 - 10], 1, T0 - 20),  # one skip short of its second, longer cool-down
            "c": ([], 1, T0 + 30_000),  # cooling down
        }
    )
    with pytest.raises(Cooldown) as raised:
        await store.join("c", frozenset(), None, T0)
    assert raised.value.retry_after_ms == 30_000
    assert (await store.snapshot("c", T0)).state["cooldown_ms"] == 30_000

    match_id = await in_call(store, "a", "b")
    outcome = await store.skip("a", match_id, T0 + 1)
    assert outcome.reply["cooldown_ms"] == 300_000
    assert outcome.effects[-1] == fx.SkipPenaltyChanged("a", (), 2, T0 + 1 + 300_000)


async def test_a_skip_record_the_store_has_is_not_replaced_by_a_loaded_one(
    stores: StoreFactory,
) -> None:
    store = stores(SKIPPY)
    await hello(store, "a", "b")
    match_id = await in_call(store, "a", "b")
    await store.skip("a", match_id, T0 + 1)
    again = (await store.snapshot("a", T0 + 1)).state["match"]["match_id"]
    await store.ack("a", again, T0 + 1)
    await store.ack("b", again, T0 + 1)
    assert (await store.skip("a", again, T0 + 1)).reply["cooldown_ms"] == 60_000
    await store.load_skip_penalties({"a": ([], 0, 0)})  # older than the store's
    with pytest.raises(Cooldown):
        await store.join("a", frozenset(), None, T0 + 2)
