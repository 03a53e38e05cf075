"""Matches with LiveKit media, against a local server speaking LiveKit's Twirp room API."""

from __future__ import annotations

import json
import time

import httpx
from livekit import api

from pairline.client import Client
from tests.conftest import ServerFactory
from tests.e2e.livekit import KEY, SECRET, participant_event, post_webhook, settings_for
from tests.e2e.test_matching import confirmed_pair
from tests.media.twirp_server import TwirpRoomServer


async def test_a_match_gets_a_two_seat_room_made_before_and_deleted_after(
    start_server: ServerFactory, livekit: TwirpRoomServer
) -> None:
    server = await start_server(**settings_for(livekit))
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        room = f"pairline-{match_id}"
        assert room in livekit.rooms  # made before either user was told
        assert livekit.rooms[room].max_participants == 2
        verifier = api.TokenVerifier(KEY, SECRET)
        for client in (ann, bob):
            (confirmed,) = [e for e in client.events_log if e.type == "match_confirmed"]
            media = confirmed.raw["media"]
            assert (media["kind"], media["url"], media["room"]) == ("livekit", livekit.url, room)
            claims = verifier.verify(media["token"])
            assert claims.identity == client.user_id
            assert claims.video.room == room and claims.video.room_join

        await ann.skip()
        await bob.wait_for("partner_left")
        await livekit.wait_until(lambda: room not in livekit.rooms)  # then the room goes
        (created,) = livekit.calls_of("CreateRoom")
        (deleted,) = livekit.calls_of("DeleteRoom")
        assert created.at < deleted.at


async def test_a_participant_left_webhook_for_a_gone_user_ends_the_call_at_once(
    start_server: ServerFactory, livekit: TwirpRoomServer
) -> None:
    # The resume window is far off: only the webhook can end the call soon.
    server = await start_server(**settings_for(livekit), PAIRLINE_RESUME_WINDOW_MS=30_000)
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        await ann.drop()  # the tab is gone: socket and media
        await bob.wait_for("partner_reconnecting")
        body = participant_event("participant_left", "EV_left_1", match_id, ann.user_id)
        async with httpx.AsyncClient(base_url=server.url) as http:
            started = time.monotonic()
            answer = await post_webhook(http, body)
            assert answer.status_code == 200
            left = await bob.wait_for("partner_left", timeout=5)
            took_s = time.monotonic() - started
        assert (left.raw["match_id"], left.raw["reason"]) == (match_id, "disconnected")
        assert left.raw["requeued"] is True
        assert took_s < 2, took_s  # at once, not after the 30 s resume window
        await livekit.wait_until(lambda: f"pairline-{match_id}" not in livekit.rooms)


async def test_the_time_from_confirm_to_media_is_logged(
    start_server: ServerFactory, livekit: TwirpRoomServer
) -> None:
    server = await start_server(**settings_for(livekit))
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        body = participant_event("participant_joined", "EV_joined_1", match_id, ann.user_id)
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await post_webhook(http, body)).status_code == 200
    await server.stop()
    lines = [json.loads(line) for line in server.log if '"media_joined"' in line]
    assert [(e["match_id"], e["user_id"]) for e in lines] == [(match_id, ann.user_id)]
    took = lines[0]["confirm_to_media_ms"]
    assert took is None or 0 <= took < 60_000  # None only if the record had not arrived yet
