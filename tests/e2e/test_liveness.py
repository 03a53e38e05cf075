"""Heartbeats, dropped connections and resume: nobody sits in a dead call or a dead queue."""

from __future__ import annotations

import signal

import pytest

from pairline.client import Client
from tests.conftest import ClientFactory, ServerFactory
from tests.e2e.test_call import in_call
from tests.e2e.test_matching import confirmed_pair


async def test_drop_and_resume_replays_missed_messages_in_order(connect: ClientFactory) -> None:
    ann, bob, match_id = await in_call(connect)
    await bob.drop()
    reconnecting = await ann.wait_for("partner_reconnecting")
    assert reconnecting.raw == {
        "seq": reconnecting.raw["seq"],
        "type": "partner_reconnecting",
        "match_id": match_id,
        "grace_ms": 1500,
    }
    for text in ("one", "two", "three"):
        await ann.chat(text)
    seq_before = bob.last_seq

    welcome = await bob.resume()
    assert welcome["session"] == bob.welcomes[0]["session"]
    assert welcome["replayed"] >= 3
    assert welcome["last_seq"] >= seq_before + 3
    assert welcome["state"]["status"] == "in_call"
    chats = [await bob.wait_for("chat") for _ in range(3)]
    assert [c.raw["text"] for c in chats] == ["one", "two", "three"]
    seqs = [c.raw["seq"] for c in chats]
    assert seqs == sorted(seqs) and seqs[0] > seq_before
    resumed = await ann.wait_for("partner_resumed")
    assert resumed.raw["match_id"] == match_id
    # The call goes on.
    await bob.chat("back")
    assert (await ann.wait_for("chat")).raw["text"] == "back"


async def test_after_the_resume_window_the_partner_is_told_and_requeued(
    connect: ClientFactory,
) -> None:
    ann, bob, match_id = await in_call(connect)
    old_session = bob.session
    await bob.drop()
    await ann.wait_for("partner_reconnecting")
    left = await ann.wait_for("partner_left", timeout=5)
    assert left.raw["reason"] == "disconnected" and left.raw["requeued"] is True
    assert left.raw["match_id"] == match_id

    late = await bob.resume()  # past the window: a fresh session that says so
    assert late["session"] != old_session
    assert late["replayed"] == 0
    assert late["state"]["status"] == "idle"


async def test_a_queued_user_keeps_its_place_while_away_and_is_not_proposed(
    connect: ClientFactory,
) -> None:
    ann = await connect("ann")
    await ann.join()
    await ann.drop()
    bob = await connect("bob")
    assert (await bob.join())["position"] == 2  # ann's place is kept...
    assert (await bob.refresh_state())["status"] == "queued"  # ...but she is not proposed
    welcome = await ann.resume()
    assert welcome["state"]["status"] in ("queued", "proposed")
    matched = await bob.wait_for("matched")
    assert matched.raw["partner"]["user_id"] == ann.user_id


async def test_a_queued_user_that_stops_answering_pings_is_removed(
    start_server: ServerFactory,
) -> None:
    server = await start_server(PAIRLINE_PING_INTERVAL_MS=300)
    async with Client(server.url, reconnect=False) as ghost, Client(server.url) as bob:
        await ghost.join()
        ghost.freeze()
        gone = await ghost.wait_for("queue_cancelled", timeout=5)
        assert gone.raw["reason"] == "connection_timeout"
        await ghost.wait_closed(timeout=5)
        assert ghost.closed_code == 4408
        assert (await bob.join())["position"] == 1


async def test_a_stale_partner_in_a_call_is_timed_out(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_PING_INTERVAL_MS=300)
    async with Client(server.url) as ann, Client(server.url, reconnect=False) as bob:
        await ann.join()
        await bob.join()
        await ann.wait_for("match_confirmed")
        await bob.wait_for("match_confirmed")
        bob.freeze()
        left = await ann.wait_for("partner_left", timeout=5)
        assert left.raw["reason"] == "timed_out" and left.raw["requeued"] is True
        await bob.wait_closed(timeout=5)
        assert bob.closed_code == 4408


async def test_media_lost_finds_a_frozen_partner_within_the_health_timeout(
    start_server: ServerFactory,
) -> None:
    # Heartbeats alone would take 10 s to find bob: within 3 s only the media_lost check can.
    server = await start_server(PAIRLINE_PING_MISSES=20)
    async with Client(server.url) as ann, Client(server.url, reconnect=False) as bob:
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        bob.freeze()
        # Once bob has ignored a ping, no answer of his can still be on its way to the server.
        await bob.wait_for("ping")
        await ann.media_lost()
        left = await ann.wait_for("partner_left", timeout=3)  # health timeout is 0.5 s here
        assert left.raw["reason"] == "disconnected" and left.raw["match_id"] == match_id
        await bob.wait_closed(timeout=5)
        assert bob.closed_code == 4408


async def test_media_lost_with_a_healthy_partner_keeps_the_call(connect: ClientFactory) -> None:
    ann, bob, _ = await in_call(connect)
    await ann.media_lost()
    await bob.wait_for("ping")  # the health check reached bob, and bob answers it
    await ann.chat("still here?")
    assert (await bob.wait_for("chat")).raw["text"] == "still here?"
    assert (await ann.refresh_state())["status"] == "in_call"
    assert not [e for e in ann.events_log if e.type == "partner_left"]


async def test_a_health_check_is_answered_even_right_after_other_messages(
    start_server: ServerFactory,
) -> None:
    # The server tells its store of most messages at most every health_fresh/4 (15 s here),
    # but the answer to a health check must count at once.
    server = await start_server(PAIRLINE_HEALTH_FRESH_MS=60_000, PAIRLINE_PING_INTERVAL_MS=20_000)
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        await confirmed_pair(ann, bob)
        await ann.media_lost()
        await bob.wait_for("ping")  # the health check; bob's pong is his first word since acks
        with pytest.raises(TimeoutError):  # the health timeout is 0.5 s
            await ann.wait_for("partner_left", timeout=2)
        assert (await ann.refresh_state())["status"] == "in_call"


async def test_a_stopping_server_tells_queued_users_their_place_is_gone(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    async with Client(server.url, reconnect=False) as ann:
        await ann.join()
        # uvicorn re-raises SIGTERM once its graceful shutdown is done
        assert await server.stop() in (0, -signal.SIGTERM)
        notice = await ann.wait_for("queue_cancelled", timeout=5)
        assert notice.raw["reason"] == "shutdown"
        await ann.wait_closed(timeout=5)
        assert ann.closed_code == 1012
