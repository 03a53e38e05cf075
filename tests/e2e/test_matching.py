"""Pairing over real sockets: who is matched with whom, in which order, and what both see."""

from __future__ import annotations

import time

import httpx

from pairline.client import Client
from tests.conftest import ClientFactory, RunningServer, ServerFactory


async def confirmed_pair(a: Client, b: Client) -> str:
    """Wait until a and b are in one confirmed call; return its match id."""
    ma = await a.wait_for("match_confirmed", timeout=5)
    mb = await b.wait_for("match_confirmed", timeout=5)
    assert ma.raw["match_id"] == mb.raw["match_id"]
    return str(ma.raw["match_id"])


async def test_two_users_are_proposed_then_confirmed_with_p2p_roles(connect: ClientFactory) -> None:
    ann = await connect("ann")
    bob = await connect("bob")
    assert (await ann.join())["position"] == 1
    await bob.join()

    matched_a = await ann.wait_for("matched")
    matched_b = await bob.wait_for("matched")
    assert matched_a.raw["match_id"] == matched_b.raw["match_id"]
    assert matched_a.raw["partner"] == {
        "user_id": bob.user_id,
        "display_name": "bob",
        "common_interests": [],
    }
    assert matched_b.raw["partner"]["user_id"] == ann.user_id
    assert matched_a.raw["ack_within_ms"] == 2000

    conf_a = await ann.wait_for("match_confirmed")
    conf_b = await bob.wait_for("match_confirmed")
    # The one who waited longer makes the offer.
    assert conf_a.raw["media"] == {"kind": "p2p", "role": "offerer", "ice_servers": []}
    assert conf_b.raw["media"]["role"] == "answerer"
    state = await ann.refresh_state()
    assert state["status"] == "in_call"
    assert state["match"]["partner"]["user_id"] == bob.user_id
    assert state["match"]["media"]["role"] == "offerer"


async def test_shared_interests_pair_at_once_and_are_named(connect: ClientFactory) -> None:
    ann = await connect("ann")
    bob = await connect("bob")
    await ann.join(interests=["Music", "chess"])
    await bob.join(interests=["music "])
    matched = await bob.wait_for("matched")
    assert matched.raw["partner"]["common_interests"] == ["music"]


async def test_interests_are_preferred_until_the_interest_wait_then_anyone(
    start_server: ServerFactory,
) -> None:
    server = await start_server(PAIRLINE_INTEREST_WAIT_MS=2000)
    async with Client(server.url) as ann, Client(server.url) as bob:
        started = time.monotonic()
        await ann.join(interests=["chess"])
        await bob.join()  # no interests: ann holds out for a chess player for 2 s
        assert (await bob.refresh_state())["status"] == "queued"
        matched = await ann.wait_for("matched", timeout=6)
        assert time.monotonic() - started >= 1.9  # paired by the deadline, not before it
        assert matched.raw["partner"]["common_interests"] == []


async def test_oldest_compatible_user_is_paired_first(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_INTEREST_WAIT_MS=60_000)  # no wait runs out here
    async with (
        Client(server.url) as first,
        Client(server.url) as second,
        Client(server.url) as newcomer,
    ):
        await first.join(interests=["chess"])
        await second.join(interests=["go"])  # not compatible with first while interests hold
        await newcomer.join(interests=["go", "chess"])  # compatible with both: the oldest wins
        matched = await newcomer.wait_for("matched")
        assert matched.raw["partner"]["user_id"] == first.user_id
        assert (await second.refresh_state())["status"] == "queued"
        assert (await second.refresh_state())["position"] == 1


async def test_language_is_respected_when_both_give_one(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_INTEREST_WAIT_MS=0)
    async with Client(server.url) as en, Client(server.url) as fr, Client(server.url) as fr2:
        await en.join(lang="en")
        await fr.join(lang="fr")
        assert (await fr.refresh_state())["position"] == 2  # both wait: no common language
        await fr2.join(lang="fr")
        matched = await fr2.wait_for("matched")
        assert matched.raw["partner"]["user_id"] == fr.user_id
        assert (await en.refresh_state())["status"] == "queued"


async def test_partners_are_not_paired_again_within_the_rematch_window(
    connect: ClientFactory,
) -> None:
    ann = await connect("ann")
    bob = await connect("bob")
    await ann.join()
    await bob.join()
    await confirmed_pair(ann, bob)
    reply = await bob.skip()
    assert reply["requeued"] is True
    left = await ann.wait_for("partner_left")
    assert left.raw["reason"] == "skipped" and left.raw["requeued"] is True
    # Both wait side by side without being paired again...
    assert (await ann.refresh_state())["status"] == "queued"
    assert (await bob.refresh_state())["status"] == "queued"
    # ...until somebody new arrives, who gets the one left behind (it queued first).
    cat = await connect("cat")
    await cat.join()
    matched = await cat.wait_for("matched")
    assert matched.raw["partner"]["user_id"] == ann.user_id


async def test_rematch_rule_off_lets_the_same_two_meet_again(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_REMATCH_AFTER_S=0)
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        first = await confirmed_pair(ann, bob)
        await ann.skip()
        second = await confirmed_pair(ann, bob)
        assert first != second


async def test_queue_position_is_pushed_when_it_changes(connect: ClientFactory) -> None:
    en = await connect("en")
    fr = await connect("fr")
    await en.join(lang="en")
    assert (await fr.join(lang="fr"))["position"] == 2
    await en.leave()
    update = await fr.wait_for("queue", timeout=3)
    assert update.raw["position"] == 1
    assert "eta_ms" in update.raw


async def test_eta_comes_from_the_recent_pairing_rate(connect: ClientFactory) -> None:
    a, b = await connect("a"), await connect("b")
    await a.join()
    assert (await a.refresh_state())["eta_ms"] is None  # nothing paired yet: no estimate
    await b.join()
    await confirmed_pair(a, b)
    c = await connect("c")
    reply = await c.join()
    assert reply["position"] == 1
    assert isinstance(reply["eta_ms"], int) and reply["eta_ms"] > 0


async def test_one_user_with_two_connections_is_one_user(
    connect: ClientFactory, server: RunningServer
) -> None:
    ann = await connect("ann")
    await ann.join()
    tab2 = Client(server.url, token=ann.token, reconnect=False)
    welcome = await tab2.connect()
    try:
        # The second hello takes the session over: same session, same state, old tab closed.
        assert welcome["session"] == ann.session
        assert welcome["state"]["status"] == "queued"
        lost = await ann.wait_closed(timeout=5)
        assert ann.closed_code == 4409, lost
        other = await connect("bob")
        await other.join()
        matched = await tab2.wait_for("matched")
        assert matched.raw["partner"]["user_id"] == other.user_id
    finally:
        await tab2.close()


async def test_status_needs_a_token_and_returns_the_snapshot(
    connect: ClientFactory, server: RunningServer
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/v1/status")).status_code == 401
        bad = await http.get("/v1/status", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["code"] == "unauthorized"
        ann = await connect("ann")
        await ann.join()
        ok = await http.get("/v1/status", headers={"Authorization": f"Bearer {ann.token}"})
        assert ok.json() == {
            "status": "queued",
            "position": 1,
            "eta_ms": None,
            "match": None,
            "cooldown_ms": None,
        }
