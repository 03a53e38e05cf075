"""`LiveKitMedia` against a real HTTP Twirp RoomService stand-in (see twirp_server.py)."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Collection

import jwt
import pytest
from livekit import api
from livekit.protocol import models, room

from pairline.media.livekit import LiveCheck, LiveKitMedia, MediaUnavailable
from tests.media.twirp_server import TwirpRoomServer

KEY = "APItestkey"
SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
USERS = ("alice", "bob")


@pytest.fixture
async def server() -> AsyncIterator[TwirpRoomServer]:
    async with TwirpRoomServer(KEY, SECRET).running() as srv:
        yield srv


def live_among(live: Collection[str]) -> LiveCheck:
    """A `live_matches` over a fixed set of live match ids."""

    async def live_of(match_ids: list[str]) -> set[str]:
        return {m for m in match_ids if m in live}

    return live_of


def make_media(srv: TwirpRoomServer, **kw: object) -> LiveKitMedia:
    # Tiny delays and timeouts: retry paths run in well under a second.
    opts: dict[str, object] = {"http_timeout_s": 0.3, "delete_retries": (0.01, 0.02, 0.04)}
    opts.update(kw)
    return LiveKitMedia(srv.url, KEY, SECRET, **opts)  # type: ignore[arg-type]


@pytest.fixture
async def media(server: TwirpRoomServer) -> AsyncIterator[LiveKitMedia]:
    m = make_media(server, empty_timeout_s=30, departure_timeout_s=10, token_ttl_s=600)
    yield m
    await m.close()


async def test_prepare_creates_one_two_seat_room(
    server: TwirpRoomServer, media: LiveKitMedia
) -> None:
    await media.prepare("m1", USERS)
    creates = server.calls_of("CreateRoom")
    assert len(creates) == 1
    req = creates[0].request
    assert isinstance(req, room.CreateRoomRequest)
    assert req.name == media.room_name("m1") == "pairline-m1"
    assert (req.max_participants, req.empty_timeout, req.departure_timeout) == (2, 30, 10)
    assert list(server.rooms) == ["pairline-m1"]
    assert media.room_of("m1") == "pairline-m1"


async def test_tokens_are_per_user_and_per_room(media: LiveKitMedia) -> None:
    before = int(time.time())
    verifier = api.TokenVerifier(KEY, SECRET)
    for user in USERS:
        d = media.describe("m1", USERS, user)
        assert {k: v for k, v in d.items() if k != "token"} == {
            "kind": "livekit",
            "url": media.url,
            "room": "pairline-m1",
        }
        claims = verifier.verify(d["token"])
        assert claims.identity == user
        assert claims.video is not None
        assert claims.video.room_join and claims.video.room == "pairline-m1"
        # Nothing beyond joining: no admin/create/list grants.
        assert not (claims.video.room_create or claims.video.room_list or claims.video.room_admin)
        raw = jwt.decode(d["token"], SECRET, algorithms=["HS256"], issuer=KEY)
        assert before + 600 - 1 <= raw["exp"] <= int(time.time()) + 600
    with pytest.raises(jwt.InvalidSignatureError):
        api.TokenVerifier(KEY, "another-secret-another-secret-another-secret").verify(
            media.describe("m1", USERS, "alice")["token"]
        )
    with pytest.raises(ValueError):
        media.describe("m1", USERS, "mallory")


async def test_on_ended_deletes_the_room(server: TwirpRoomServer, media: LiveKitMedia) -> None:
    await media.prepare("m1", USERS)
    await media.on_ended("m1")
    assert server.rooms == {}
    [delete] = server.calls_of("DeleteRoom")
    assert isinstance(delete.request, room.DeleteRoomRequest)
    assert delete.request.room == "pairline-m1"
    assert media.undeleted == set()


async def test_delete_failing_twice_is_retried(
    server: TwirpRoomServer, media: LiveKitMedia
) -> None:
    await media.prepare("m1", USERS)
    server.fail("DeleteRoom", 2, status=500)
    await media.on_ended("m1")
    deletes = server.calls_of("DeleteRoom")
    assert len(deletes) == 3
    assert server.rooms == {}
    assert media.undeleted == set()
    # The waits between attempts follow delete_retries (0.01 then 0.02).
    gaps = [b.at - a.at for a, b in itertools.pairwise(deletes)]
    assert gaps[0] >= 0.01 and gaps[1] >= 0.02


async def test_delete_of_a_room_already_gone_counts_as_done(media: LiveKitMedia) -> None:
    await media.on_ended("never-created")
    assert media.undeleted == set()


async def test_hanging_delete_gives_up_after_the_retries(
    server: TwirpRoomServer, media: LiveKitMedia
) -> None:
    await media.prepare("m1", USERS)
    server.hang("DeleteRoom", 100)
    started = time.monotonic()
    await media.on_ended("m1")
    elapsed = time.monotonic() - started
    attempts = 1 + len(media.delete_retries)
    assert server.hung_count == attempts
    # Bounded by attempts * http timeout + the retry delays (plus slack for a slow machine).
    assert elapsed < attempts * media.http_timeout_s + sum(media.delete_retries) + 1.0
    assert media.undeleted == {"pairline-m1"}
    assert "pairline-m1" in server.rooms

    # Once LiveKit answers again, the sweep finishes the job.
    server.faults.clear()
    assert await media.sweep(live_among(())) == 1
    assert server.rooms == {}
    assert media.undeleted == set()


async def test_sweep_deletes_only_rooms_without_a_live_match(
    server: TwirpRoomServer, media: LiveKitMedia
) -> None:
    for m in ("live", "dead1", "dead2"):
        await media.prepare(m, USERS)
    server.rooms["someone-elses-room"] = models.Room(name="someone-elses-room")
    assert await media.sweep(live_among({"live"})) == 2
    assert set(server.rooms) == {"pairline-live", "someone-elses-room"}
    assert len(server.calls_of("ListRooms")) == 1


async def test_sweep_survives_a_failing_list(server: TwirpRoomServer, media: LiveKitMedia) -> None:
    await media.prepare("dead", USERS)
    server.fail("ListRooms", 1)
    assert await media.sweep(live_among(())) == 0
    assert await media.sweep(live_among(())) == 1


async def test_prepare_against_an_error_raises_media_unavailable(
    server: TwirpRoomServer, media: LiveKitMedia
) -> None:
    server.fail("CreateRoom", 1, status=500)
    with pytest.raises(MediaUnavailable):
        await media.prepare("m1", USERS)
    assert server.rooms == {}
    # The SDK did not retry on its own.
    assert len(server.calls_of("CreateRoom")) == 1


async def test_prepare_that_hangs_raises_media_unavailable(
    server: TwirpRoomServer, media: LiveKitMedia
) -> None:
    server.hang("CreateRoom", 1)
    with pytest.raises(MediaUnavailable):
        await media.prepare("m1", USERS)
    # It may have been created after all: the sweep will check.
    assert media.undeleted == {"pairline-m1"}


async def test_wrong_secret_is_rejected_by_the_server(server: TwirpRoomServer) -> None:
    bad = LiveKitMedia(server.url, KEY, "wrong-secret-wrong-secret-wrong-secret-0000")
    try:
        with pytest.raises(MediaUnavailable, match="unauthenticated"):
            await bad.prepare("m1", USERS)
    finally:
        await bad.close()
    assert server.rooms == {}
    assert server.calls == []


async def test_webhook_receiver_verifies_signed_bodies(media: LiveKitMedia) -> None:
    import base64
    import hashlib

    body = '{"event": "room_finished", "room": {"name": "pairline-m1"}, "id": "EV_1"}'
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = api.AccessToken(KEY, SECRET).with_sha256(digest).to_jwt()
    event = media.webhook_receiver().receive(body, token)
    assert event.event == "room_finished" and event.room.name == "pairline-m1"
    with pytest.raises(Exception, match="hash mismatch"):
        media.webhook_receiver().receive(body.replace("m1", "m2"), token)
