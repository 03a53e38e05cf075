"""Nobody is left alone in a LiveKit room, and no room outlives its call.

The LiveKit side is the Twirp stand-in (tests/media/twirp_server.py): a test puts participants
in its rooms as LiveKit would, and sends the webhooks LiveKit would send, signed as it signs them.
"""

from __future__ import annotations

import time

import httpx
from livekit.protocol import models

from pairline.client import Client
from tests.conftest import ServerFactory
from tests.e2e.livekit import participant_event, post_webhook, settings_for
from tests.e2e.test_matching import confirmed_pair
from tests.media.twirp_server import TwirpRoomServer

ALONE_MS = 400


async def test_a_user_alone_in_the_room_is_re_queued_and_so_is_the_absent_one(
    start_server: ServerFactory,
    livekit: TwirpRoomServer,
) -> None:
    server = await start_server(**settings_for(livekit), PAIRLINE_ALONE_MS=ALONE_MS)
    async with (
        Client(server.url) as ann,
        Client(server.url) as bob,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        room = f"pairline-{match_id}"
        # Both come into the room; then bob's media leaves while his connection stays.
        livekit.participants[room] = [ann.user_id]
        await post_webhook(
            http, participant_event("participant_joined", "E1", match_id, ann.user_id)
        )
        livekit.participants[room] = [ann.user_id, bob.user_id]
        await post_webhook(
            http, participant_event("participant_joined", "E2", match_id, bob.user_id)
        )
        livekit.participants[room] = [ann.user_id]
        left_at = time.monotonic()
        await post_webhook(http, participant_event("participant_left", "E3", match_id, bob.user_id))

        told_ann = await ann.wait_for("partner_left", timeout=5)
        waited_ms = (time.monotonic() - left_at) * 1000
        told_bob = await bob.wait_for("partner_left", timeout=5)
        # Not before ann sat alone for ALONE_MS (the earlier joins' checks found two), and
        # soon after.
        assert ALONE_MS - 60 <= waited_ms < ALONE_MS + 3000, waited_ms
        for told in (told_ann, told_bob):
            assert (told.raw["match_id"], told.raw["reason"]) == (match_id, "disconnected")
            assert told.raw["requeued"] is True
        # The one who waited in the room goes back first.
        assert told_ann.raw["position"] < told_bob.raw["position"]
        await livekit.wait_until(lambda: room not in livekit.rooms)


async def test_a_room_livekit_closed_ends_its_call(
    start_server: ServerFactory,
    livekit: TwirpRoomServer,
) -> None:
    server = await start_server(**settings_for(livekit))
    async with (
        Client(server.url) as ann,
        Client(server.url) as bob,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        finished = participant_event("room_finished", "E_fin", match_id, "")
        assert (await post_webhook(http, finished)).status_code == 200
        for client in (ann, bob):
            told = await client.wait_for("partner_left", timeout=5)
            assert (told.raw["reason"], told.raw["requeued"]) == ("disconnected", True)


async def test_rooms_without_a_live_match_are_swept(
    start_server: ServerFactory,
    livekit: TwirpRoomServer,
) -> None:
    server = await start_server(**settings_for(livekit), PAIRLINE_LIVEKIT_SWEEP_MS=200)
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        # A room a failed deletion left behind, and one that is not pairline's.
        for name in ("pairline-m_0_gone", "someone-elses"):
            livekit.rooms[name] = models.Room(name=name, sid="RM_" + name)
        await livekit.wait_until(lambda: "pairline-m_0_gone" not in livekit.rooms)
        assert set(livekit.rooms) == {f"pairline-{match_id}", "someone-elses"}
