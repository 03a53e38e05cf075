"""Block, Report and the skip cool-down, as a person on the page meets them."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import expect

from tests.browser.conftest import Web, in_call

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN = "admin-token-for-browser-tests"


async def test_blocked_strangers_never_meet_again(web: Web) -> None:
    # Without the rematch window only the block keeps the two apart.
    await web.server(PAIRLINE_REMATCH_AFTER_S=0)
    ann = await web.user("ann")
    bob = await web.user("bob")
    await in_call(ann, bob)
    ann_id, bob_id = await ann.user_id(), await bob.user_id()

    await ann.press("block")
    await ann.has_chat_line("You blocked Stranger")
    # Both wait in the queue side by side: compatible in every other way, never paired.
    await ann.view("queued")
    await ann.overlay("You blocked Stranger")
    await bob.view("queued")
    await bob.overlay("Stranger left")
    await web.shot(ann, "blocked-back-in-queue")
    await web.shot(bob, "was-blocked-back-in-queue")

    cat = await web.user("cat")
    await cat.press("start")
    await cat.sees_partner_video()
    dan = await web.user("dan")
    await dan.press("start")
    await dan.sees_partner_video()
    pairs = {await ann.partner_id(), await bob.partner_id()}
    assert pairs == {await cat.user_id(), await dan.user_id()}
    assert await ann.partner_id() != bob_id and await bob.partner_id() != ann_id
    await ann.sees_partner_video()
    await bob.sees_partner_video()
    await web.shot(ann, "matched-with-someone-else")


async def test_report_with_a_reason_reaches_the_moderators_and_a_ban_shows(web: Web) -> None:
    server = await web.server(PAIRLINE_ADMIN_TOKEN=ADMIN)
    ann = await web.user("ann")
    bob = await web.user("bob")
    await in_call(ann, bob)
    bob_id = await bob.user_id()

    await ann.press("report")
    dialog = ann.page.get_by_role("dialog", name="Report this person")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Spam or advertising").check()
    await dialog.get_by_label("Details").fill("kept posting links")
    await web.shot(ann, "report-dialog")
    await dialog.get_by_role("button", name="Report and block").click()
    await ann.has_chat_line("You reported Stranger")
    await ann.view("queued")
    await bob.view("queued")

    auth = {"authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=server.url, headers=auth) as admin:
        reports = (await admin.get("/v1/admin/reports", params={"reported": bob_id})).json()
        assert [(r["reason"], r["details"]) for r in reports["reports"]] == [
            ("spam", "kept posting links")
        ]
        banned = await admin.post("/v1/admin/bans", json={"user_id": bob_id, "reason": "spam"})
        assert banned.status_code == 201
    await bob.view("banned")
    await bob.overlay("banned")
    await expect(bob.page.locator("#start")).to_be_disabled()
    await web.shot(bob, "banned")


async def test_too_many_skips_show_a_cool_down_countdown(web: Web) -> None:
    # The first skip reaches the limit and starts a 3 s cool-down.
    await web.server(PAIRLINE_SKIP_LIMIT=1, PAIRLINE_SKIP_COOLDOWNS_S=3)
    ann = await web.user("ann")
    bob = await web.user("bob")
    await in_call(ann, bob)

    await ann.press("start")  # Next
    await ann.view("cooldown")
    countdown = ann.page.locator("#overlay-countdown")
    await expect(countdown).to_have_text(re.compile(r"^0:0[1-3]$"))
    await expect(ann.page.locator("#start")).to_be_disabled()
    await web.shot(ann, "cooldown-countdown")
    await expect(countdown).to_have_text("0:01", timeout=5_000)  # it counts down
    await web.shot(ann, "cooldown-almost-over")
    await bob.view("queued")
    await bob.overlay("Stranger left")

    await ann.view("idle", timeout=5_000)
    await expect(ann.page.locator("#start")).to_be_enabled()
    await expect(ann.page.locator("#start")).to_have_text("Start")
    await ann.press("start")
    await ann.view("queued|matched|call-connecting|call")
    await web.shot(ann, "after-cooldown-searching")
