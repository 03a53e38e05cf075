"""A call's end in every way a user can end it, and what the partner hears at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pairline.client import Client, CommandError
from tests.conftest import ClientFactory, ServerFactory
from tests.e2e.test_matching import confirmed_pair


async def in_call(connect: ClientFactory, **bob_options: Any) -> tuple[Client, Client, str]:
    ann = await connect("ann")
    bob = await connect("bob", **bob_options)
    await ann.join()
    await bob.join()
    return ann, bob, await confirmed_pair(ann, bob)


async def test_skip_reaches_the_partner_and_requeues_both(connect: ClientFactory) -> None:
    ann, bob, match_id = await in_call(connect)
    reply = await ann.skip()
    assert reply == {"ok": True, "requeued": True, "position": 2, "eta_ms": reply["eta_ms"]}
    left = await bob.wait_for("partner_left")
    assert left.raw == {
        "seq": left.raw["seq"],
        "type": "partner_left",
        "match_id": match_id,
        "reason": "skipped",
        "requeued": True,
        "position": 1,  # the one left behind goes first
    }


async def test_end_makes_the_ender_idle_and_requeues_the_partner(connect: ClientFactory) -> None:
    ann, bob, _ = await in_call(connect)
    assert await ann.end() == {"ok": True}
    left = await bob.wait_for("partner_left")
    assert left.raw["reason"] == "ended" and left.raw["requeued"] is True
    assert (await ann.refresh_state())["status"] == "idle"
    assert (await bob.refresh_state())["status"] == "queued"


async def test_both_skipping_at_once_ends_in_one_consistent_outcome(connect: ClientFactory) -> None:
    for _ in range(5):
        ann, bob, match_id = await in_call(connect)
        replies = await asyncio.gather(ann.skip(), bob.skip())
        # Both are answered ok; exactly one skip ended the call, the other found it over.
        assert all(r["ok"] for r in replies)
        lefts = [
            e
            for c in (ann, bob)
            for e in c.events_log
            if e.type == "partner_left" and e.raw["match_id"] == match_id
        ]
        assert len(lefts) == 1, lefts
        for client in (ann, bob):
            state = await client.refresh_state()
            assert state["status"] == "queued", state  # nobody stuck, nobody matched twice
        await ann.close()
        await bob.close()


async def test_chat_and_signal_are_relayed_only_within_the_call(connect: ClientFactory) -> None:
    ann, bob, match_id = await in_call(connect)
    await ann.chat("hello")
    await ann.signal({"sdp": "v=0", "type": "offer"})
    chat = await bob.wait_for("chat")
    assert chat.raw["text"] == "hello" and chat.raw["match_id"] == match_id
    assert isinstance(chat.raw["ts"], int)
    signal = await bob.wait_for("signal")
    assert signal.raw["data"] == {"sdp": "v=0", "type": "offer"}

    await ann.end()
    await bob.wait_for("partner_left")
    await ann.chat("anyone there?", match_id=match_id)
    refused = await ann.wait_for("error")
    assert refused.raw["code"] == "not_found"
    assert not [e for e in bob.events_log if e.type == "chat" and e.raw["text"] == "anyone there?"]


async def test_a_late_skip_is_ok_and_changes_nothing(connect: ClientFactory) -> None:
    ann, bob, match_id = await in_call(connect)
    await ann.skip()
    await bob.wait_for("partner_left")
    reply = await bob.skip(match_id)
    assert reply["ok"] is True and reply["requeued"] is True
    assert (await bob.refresh_state())["status"] == "queued"


async def test_a_late_end_takes_the_user_out_of_the_queue(connect: ClientFactory) -> None:
    ann, bob, match_id = await in_call(connect)
    await ann.skip()
    await bob.wait_for("partner_left")
    assert await bob.end(match_id) == {"ok": True}
    assert (await bob.refresh_state())["status"] == "idle"


async def test_commands_that_do_not_fit_the_state_are_refused_and_change_nothing(
    connect: ClientFactory,
) -> None:
    ann = await connect("ann")
    with pytest.raises(CommandError) as idle_skip:
        await ann.skip("m_nope")
    assert idle_skip.value.code == "invalid_state"
    await ann.join()
    with pytest.raises(CommandError) as double_join:
        await ann.join()
    assert double_join.value.code == "invalid_state"
    bob = await connect("bob")
    await bob.join()
    await confirmed_pair(ann, bob)
    with pytest.raises(CommandError) as wrong_match:
        await ann.skip("m_someone_else")
    assert wrong_match.value.code == "not_found"
    assert (await ann.refresh_state())["status"] == "in_call"


async def test_block_ends_the_call_and_the_two_never_meet_again(
    start_server: ServerFactory,
) -> None:
    server = await start_server(PAIRLINE_REMATCH_AFTER_S=0)
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        await confirmed_pair(ann, bob)
        assert await ann.block() == {"ok": True}
        left = await bob.wait_for("partner_left")
        assert left.raw["reason"] == "ended"  # the blocked side is not told it was blocked
        await ann.join()
        assert (await bob.refresh_state())["status"] == "queued"
        assert (await ann.refresh_state())["position"] == 2  # waiting, not paired with bob
        async with Client(server.url) as cat:
            await cat.join()
            matched = await cat.wait_for("matched")
            assert matched.raw["partner"]["user_id"] == bob.user_id


async def test_report_ends_the_call_like_block(connect: ClientFactory) -> None:
    ann, bob, _ = await in_call(connect)
    assert await ann.report("spam", "kept posting links") == {"ok": True}
    left = await bob.wait_for("partner_left")
    assert left.raw["reason"] == "ended"


async def test_skip_cooldown_after_the_limit(start_server: ServerFactory) -> None:
    server = await start_server(
        PAIRLINE_SKIP_LIMIT=2, PAIRLINE_SKIP_COOLDOWNS_S="2,4", PAIRLINE_REMATCH_AFTER_S=0
    )
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        await confirmed_pair(ann, bob)
        first = await ann.skip()
        assert first["requeued"] is True
        await confirmed_pair(ann, bob)
        second = await ann.skip()  # reaches the limit: the call still ends
        assert second["requeued"] is False
        assert 1000 < second["cooldown_ms"] <= 2000
        left = await bob.wait_for("partner_left")
        assert left.raw["requeued"] is True

        with pytest.raises(CommandError) as refused:
            await ann.join()
        assert refused.value.code == "cooldown"
        assert 0 < (refused.value.retry_after_ms or 0) <= 2000
        state = await ann.refresh_state()
        assert state["status"] == "idle" and 0 < state["cooldown_ms"] <= 2000
        # end, leave, block and report are never refused for cool-down: leave is merely
        # not applicable while idle.
        with pytest.raises(CommandError) as not_queued:
            await ann.leave()
        assert not_queued.value.code == "invalid_state"
