"""The page itself: offline assets, a denied or missing camera, a server that goes away."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Request, expect

from tests.browser.conftest import FLAGS, User, Web
from tests.e2e.livekit import KEY, SECRET, settings_for
from tests.media.twirp_server import TwirpRoomServer

pytestmark = pytest.mark.asyncio(loop_scope="module")

# The same browser, but the fake permission prompt answers "deny" / the fake camera is missing.
CAMERA_DENIED = [f for f in FLAGS if f != "--use-fake-ui-for-media-stream"] + [
    "--use-fake-ui-for-media-stream=deny"
]
NO_CAMERA = [f for f in FLAGS if f != "--use-fake-device-for-media-stream"] + [
    "--use-fake-device-for-media-stream=device-count=0"
]


async def test_everything_the_page_loads_comes_from_the_server_itself(web: Web) -> None:
    server = await web.server()
    requested: list[str] = []
    context = await web.browser.new_context(
        color_scheme="dark", viewport={"width": 1280, "height": 800}
    )
    page = await context.new_page()
    user = User("ann", context, page)
    web.users.append(user)
    page.on("pageerror", lambda e: user.console.append(f"pageerror: {e}"))
    responses: dict[str, str] = {}

    def record(request: Request) -> None:
        requested.append(request.url)

    page.on("request", record)
    page.on("response", lambda r: responses.setdefault(r.url, r.headers.get("content-type", "")))
    await page.goto(server.url)
    await user.view("idle")
    # LiveKit's client is shipped too, loaded only when a match uses LiveKit.
    room, version = await page.evaluate(
        "import('/static/vendor/livekit-client.esm.mjs').then(m => [typeof m.Room, m.version])"
    )
    assert (room, version) == ("function", "2.23.0")
    assert requested and all(url.startswith(server.url) for url in requested), requested
    scripts = [url for url in responses if url.endswith((".js", ".mjs"))]
    assert len(scripts) >= 3  # the page, the client module, LiveKit
    assert all(responses[url].startswith("text/javascript") for url in scripts), responses
    await web.shot(user, "idle-dark")


async def test_a_denied_camera_is_explained_and_the_call_still_works(web: Web) -> None:
    await web.server()
    denied = await web.launch(CAMERA_DENIED)
    ann = await web.user("ann", browser=denied)
    await expect(ann.page.locator("#local-note")).to_contain_text("Camera blocked")
    await expect(ann.page.locator("#retry-camera")).to_be_visible()
    await expect(ann.page.locator("#cam")).to_be_disabled()
    await web.shot(ann, "camera-denied")

    bob = await web.user("bob")
    await ann.press("start")  # without a camera Ann still offers, and receives Bob's video
    await ann.view("queued")
    await bob.press("start")
    await ann.sees_partner_video()
    await bob.view("call-novideo")
    await bob.overlay("camera is off")
    await web.shot(ann, "camera-denied-in-call")
    await web.shot(bob, "partner-without-camera")
    await ann.chat("no camera, but I can type")
    await bob.has_chat_line("Stranger: no camera, but I can type")


async def test_no_camera_sends_sound_only(web: Web) -> None:
    await web.server()
    no_camera = await web.launch(NO_CAMERA)
    bob = await web.user("bob")
    ann = await web.user("ann", browser=no_camera)
    await expect(ann.page.locator("#local-note")).to_contain_text("No camera found")
    await expect(ann.page.locator("#mic")).to_be_enabled()  # the microphone still works
    await web.shot(ann, "no-camera")

    await bob.press("start")
    await bob.view("queued")
    await ann.press("start")  # Ann answers Bob's offer with sound only
    await ann.sees_partner_video()
    await bob.view("call-novideo")
    await web.shot(ann, "no-camera-in-call")


async def test_a_server_that_goes_away_shows_reconnecting_then_offline(web: Web) -> None:
    server = await web.server()
    ann = await web.user("ann")
    await ann.press("start")
    await ann.view("queued")
    server.process.terminate()  # not waiting for its exit: the page reacts meanwhile
    await ann.view("reconnecting")
    await ann.overlay("Reconnecting")
    await expect(ann.page.locator("#conn")).to_contain_text("Reconnecting")
    await web.shot(ann, "reconnecting")
    # Backoff of 1, 2 and 4 s (with jitter), then it gives up and says so.
    await ann.view("offline", timeout=15_000)
    await expect(ann.page.locator("#overlay-action")).to_have_text("Try again")
    await web.shot(ann, "offline")


async def test_a_livekit_match_loads_the_vendored_client_and_reports_lost_media(web: Web) -> None:
    # A stand-in for LiveKit's room API: rooms are made, but no media server answers there, so
    # each page loads livekit-client, fails to join, says so and tells pairline (`media_lost`).
    async with TwirpRoomServer(KEY, SECRET).running() as livekit:
        await web.server(**settings_for(livekit))
        ann = await web.user("ann")
        bob = await web.user("bob")
        sent: list[str | bytes] = []
        ann.page.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(f)))
        loaded: list[str] = []
        ann.page.on("response", lambda r: loaded.append(r.url) if "livekit" in r.url else None)
        await ann.press("start")
        await ann.view("queued")
        await bob.press("start")
        for user in (ann, bob):
            await user.view("call-failed", timeout=20_000)
            await user.overlay("video connection failed")
        assert any(url.endswith("/static/vendor/livekit-client.esm.mjs") for url in loaded)
        lost = [json.loads(f) for f in sent if isinstance(f, str) and '"media_lost"' in f]
        assert lost and lost[0]["match_id"] == await ann.match_id()
        await web.shot(ann, "livekit-media-failed")
        await ann.press("start")  # Next still moves on
        await ann.view("queued")
