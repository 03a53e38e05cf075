"""The two-phase match: nobody is ever left in a one-sided match, and the healthy side keeps its
place in the queue when a proposal fails."""

from __future__ import annotations

from pairline.client import Client
from tests.conftest import ClientFactory, ServerFactory


async def test_ack_timeout_rolls_back_and_the_healthy_user_keeps_its_place(
    connect: ClientFactory,
) -> None:
    ann = await connect("ann")
    fra = await connect("fra")
    await ann.join(lang="en")
    await fra.join(lang="fr")  # waits behind ann: no common language
    mute = await connect("mute", ack_matched=False)  # receives `matched`, never acks it
    await mute.join(lang="en")

    assert (await ann.wait_for("matched")).raw["partner"]["user_id"] == mute.user_id
    await mute.wait_for("matched")

    healthy = await ann.wait_for("match_cancelled", timeout=5)
    assert healthy.raw["reason"] == "ack_timeout"
    assert healthy.raw["requeued"] is True
    assert healthy.raw["position"] == 1  # its original place, ahead of fra
    silent = await mute.wait_for("match_cancelled", timeout=5)
    assert silent.raw["reason"] == "ack_timeout"
    assert silent.raw["requeued"] is False

    # Nobody got a one-sided call.
    for client in (ann, mute):
        assert not [e for e in client.events_log if e.type == "match_confirmed"]
    assert (await ann.refresh_state())["status"] == "queued"
    assert (await fra.refresh_state())["position"] == 2
    assert (await mute.refresh_state())["status"] == "idle"


async def test_a_user_who_stops_answering_pings_is_never_proposed(
    start_server: ServerFactory,
) -> None:
    server = await start_server(PAIRLINE_HEALTH_FRESH_MS=300, PAIRLINE_PING_INTERVAL_MS=400)
    async with (
        Client(server.url, display_name="ghost", reconnect=False) as ghost,
        Client(server.url, display_name="bob") as bob,
        Client(server.url, display_name="cat") as cat,
    ):
        await ghost.join()
        ghost.freeze()
        # Two pings sent after the freeze go unanswered, 400 ms apart: ghost has been silent
        # longer than 300 ms (a ping that came before the freeze was answered).
        frozen_at = max((e.raw.get("seq", 0) for e in ghost.events_log), default=0)
        after_freeze = lambda e: e.raw["seq"] > frozen_at  # noqa: E731
        await ghost.wait_for("ping", where=after_freeze)
        await ghost.wait_for("ping", where=after_freeze)
        await bob.join()  # pairs with ghost in reserve, health-checks it, and gives up

        gone = await ghost.wait_for("queue_cancelled", timeout=5)
        assert gone.raw["reason"] == "connection_timeout"
        await ghost.wait_closed(timeout=5)
        assert ghost.closed_code == 4408

        kept = await bob.wait_for("match_cancelled", timeout=5)
        assert kept.raw["reason"] == "partner_unreachable"
        assert kept.raw["requeued"] is True and kept.raw["position"] == 1
        assert not [e for e in bob.events_log if e.type == "matched"], "ghost was proposed"

        await cat.join()
        matched = await bob.wait_for("matched")
        assert matched.raw["partner"]["user_id"] == cat.user_id


async def test_a_fresh_user_is_proposed_without_a_health_check(
    start_server: ServerFactory,
) -> None:
    # Regular pings a minute apart: any ping before `matched` would be a health check's probe.
    server = await start_server(PAIRLINE_PING_INTERVAL_MS=60_000)
    async with Client(server.url, display_name="ann") as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        await ann.wait_for("match_confirmed")
        # Both were heard from within the fresh window (their joins): no probe before `matched`.
        kinds = [e.type for e in ann.events_log]
        assert kinds.index("matched") < kinds.index("match_confirmed")
        assert "ping" not in kinds[: kinds.index("matched")]


async def test_a_lost_matched_never_yields_a_one_sided_call(connect: ClientFactory) -> None:
    ann = await connect("ann")
    bob = await connect("bob", reconnect=False, ack_matched=False)
    await ann.join()
    await bob.join()
    await bob.wait_for("matched")
    await bob.drop()  # gone before acking: `matched` got no answer

    cancelled = await ann.wait_for("match_cancelled", timeout=5)
    assert cancelled.raw["reason"] == "partner_unreachable"
    assert cancelled.raw["requeued"] is True and cancelled.raw["position"] == 1
    assert not [e for e in ann.events_log if e.type == "match_confirmed"]

    # Bob keeps its place while it may resume, and learns what happened from the replay.
    welcome = await bob.resume()
    assert welcome["session"] == bob.session
    assert welcome["state"]["status"] in ("queued", "proposed")
    note = await bob.wait_for("match_cancelled", timeout=5)
    assert note.raw["reason"] == "disconnected" and note.raw["requeued"] is True


async def test_leaving_during_a_proposal_cancels_it_for_the_partner(connect: ClientFactory) -> None:
    ann = await connect("ann")
    bob = await connect("bob", ack_matched=False)
    await ann.join()
    await bob.join()
    await bob.wait_for("matched")
    await bob.leave()
    cancelled = await ann.wait_for("match_cancelled", timeout=5)
    assert cancelled.raw["reason"] == "partner_left"
    assert cancelled.raw["requeued"] is True
    assert (await bob.refresh_state())["status"] == "idle"
