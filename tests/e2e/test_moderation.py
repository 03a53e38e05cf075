"""Blocks a user can list and lift; reports and bans through the admin API, acting at once."""

from __future__ import annotations

import json

import httpx
from websockets.asyncio.client import connect as ws_connect

from pairline.client import Client
from pairline.webhooks import verify_signature
from tests.conftest import ServerFactory
from tests.e2e.rawws import ws_url
from tests.e2e.test_matching import confirmed_pair

ADMIN = "admin-token-for-tests"


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_user_lists_and_lifts_its_blocks(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_REMATCH_AFTER_S=0)
    async with (
        Client(server.url) as ann,
        Client(server.url) as bob,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        await ann.join()
        await bob.join()
        await confirmed_pair(ann, bob)
        await ann.block()
        listed = (await http.get("/v1/blocks", headers=bearer(ann.token))).json()
        assert [b["user_id"] for b in listed["blocks"]] == [bob.user_id]
        assert (await http.get("/v1/blocks")).status_code == 401

        lifted = await http.delete(f"/v1/blocks/{bob.user_id}", headers=bearer(ann.token))
        assert lifted.status_code == 204
        assert (await http.get("/v1/blocks", headers=bearer(ann.token))).json()["blocks"] == []
        await bob.wait_for("partner_left")  # bob was re-queued when ann blocked him
        await ann.join()
        matched = await ann.wait_for(
            "matched", where=lambda e: e.raw["partner"]["user_id"] == bob.user_id
        )
        assert matched.raw["partner"]["user_id"] == bob.user_id


async def test_the_admin_api_is_off_without_a_token_and_closed_to_others(
    start_server: ServerFactory,
) -> None:
    off = await start_server()
    on = await start_server(PAIRLINE_ADMIN_TOKEN=ADMIN)
    async with httpx.AsyncClient() as http:
        assert (
            await http.get(f"{off.url}/v1/admin/reports", headers=bearer(ADMIN))
        ).status_code == 404
        assert (await http.get(f"{on.url}/v1/admin/reports")).status_code == 401
        wrong = await http.get(f"{on.url}/v1/admin/reports", headers=bearer("guess"))
        assert wrong.status_code == 401


async def test_a_ban_ends_the_call_closes_with_4403_and_keeps_the_user_out(
    start_server: ServerFactory,
) -> None:
    server = await start_server(PAIRLINE_ADMIN_TOKEN=ADMIN)
    admin = httpx.AsyncClient(base_url=server.url, headers=bearer(ADMIN))
    async with admin, Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        await ann.report("harassment", "said awful things", match_id)
        reports = (await admin.get("/v1/admin/reports", params={"reported": bob.user_id})).json()
        assert [r["reason"] for r in reports["reports"]] == ["harassment"]
        await bob.wait_for("partner_left")
        await bob.leave()  # out of the way of the next pair

        async with Client(server.url) as cat, Client(server.url) as dan:
            await cat.join()
            await dan.join()
            call = await confirmed_pair(cat, dan)
            banned = await admin.post(
                "/v1/admin/bans",
                json={"user_id": dan.user_id, "reason": "abuse", "duration_s": 600},
            )
            assert banned.status_code == 201
            left = await cat.wait_for("partner_left")
            assert (left.raw["match_id"], left.raw["reason"]) == (call, "ended")
            assert left.raw["requeued"] is True
            await dan.wait_closed(timeout=5)
            assert dan.closed_code == 4403

            async with ws_connect(ws_url(server.url)) as ws:  # a new hello is refused
                await ws.send(json.dumps({"type": "hello", "v": 1, "token": dan.token}))
                await ws.wait_closed()
                assert ws.close_code == 4403

            listed = (await admin.get("/v1/admin/bans")).json()["bans"]
            assert [b["user_id"] for b in listed] == [dan.user_id]
            assert (await admin.delete(f"/v1/admin/bans/{dan.user_id}")).status_code == 204
            async with Client(server.url, token=dan.token) as back:
                assert (await back.join())["ok"] is True


async def test_a_banned_queued_user_is_told_why(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_ADMIN_TOKEN=ADMIN)
    async with httpx.AsyncClient(base_url=server.url, headers=bearer(ADMIN)) as admin:
        async with Client(server.url, reconnect=False) as eve:
            await eve.join()
            answer = await admin.post("/v1/admin/bans", json={"user_id": eve.user_id})
            assert answer.status_code == 201 and answer.json()["until"] is None
            cancelled = await eve.wait_for("queue_cancelled")
            assert cancelled.raw["reason"] == "banned"
            await eve.wait_closed(timeout=5)
            assert eve.closed_code == 4403
        bad = await admin.post("/v1/admin/bans", json={"user_id": "x", "duration_s": -5})
        assert bad.status_code == 400


async def test_each_report_reaches_the_operators_webhook_signed(
    start_server: ServerFactory,
) -> None:
    from tests.test_webhooks import Receiver

    receiver = Receiver()
    await receiver.start()
    try:
        server = await start_server(
            PAIRLINE_REPORT_WEBHOOK_URL=receiver.url, PAIRLINE_REPORT_WEBHOOK_SECRET="hook-secret"
        )
        async with Client(server.url) as ann, Client(server.url) as bob:
            await ann.join()
            await bob.join()
            match_id = await confirmed_pair(ann, bob)
            await ann.report("spam", "links", match_id)
            await receiver.wait_until(lambda: len(receiver.accepted) == 1)
        hook = receiver.accepted[0]
        assert verify_signature(
            "hook-secret",
            hook.headers["x-pairline-timestamp"],
            hook.body,
            hook.headers["x-pairline-signature"],
        )
        event = hook.event
        assert event["type"] == "report.filed"
        assert (event["data"]["reporter"], event["data"]["reported"]) == (ann.user_id, bob.user_id)
        assert (event["data"]["reason"], event["data"]["match_id"]) == ("spam", match_id)
    finally:
        await receiver.stop()
