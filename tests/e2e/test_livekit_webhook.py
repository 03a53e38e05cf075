"""LiveKit's webhooks at POST /v1/livekit/webhook, signed exactly as LiveKit signs them."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import uuid

import httpx
from livekit import api

from tests.conftest import ServerFactory

KEY, SECRET = "APIpairlinetest", "pairline-livekit-secret-for-tests-only"
LIVEKIT = {
    # Nothing listens there: these tests confirm no match, so no room is ever made.
    "LIVEKIT_URL": "http://127.0.0.1:9",
    "LIVEKIT_API_KEY": KEY,
    "LIVEKIT_API_SECRET": SECRET,
}


def event(kind: str = "room_started", event_id: str | None = None) -> str:
    return json.dumps(
        {
            "event": kind,
            "id": event_id or f"EV_{uuid.uuid4().hex[:12]}",
            "createdAt": "1795364000",
            "room": {"name": "pairline-m_1_abc", "sid": "RM_1"},
        }
    )


def signature(body: str, *, key: str = KEY, secret: str = SECRET, ttl_s: int = 300) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = api.AccessToken(key, secret).with_sha256(digest)
    return token.with_ttl(datetime.timedelta(seconds=ttl_s)).to_jwt()


async def post(http: httpx.AsyncClient, body: str, auth: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/webhook+json"}
    if auth is not None:
        headers["Authorization"] = auth
    return await http.post("/v1/livekit/webhook", content=body, headers=headers)


async def test_the_webhook_is_404_without_livekit(start_server: ServerFactory) -> None:
    server = await start_server()
    async with httpx.AsyncClient(base_url=server.url) as http:
        body = event()
        assert (await post(http, body, signature(body))).status_code == 404


async def test_only_livekits_own_signature_is_accepted_and_once(
    start_server: ServerFactory,
) -> None:
    server = await start_server(**LIVEKIT)
    async with httpx.AsyncClient(base_url=server.url) as http:
        body = event(event_id="EV_once")
        good = await post(http, body, signature(body))
        assert good.status_code == 200 and good.json() == {"ok": True}
        again = await post(http, body, signature(body))  # LiveKit retries: handled once
        assert again.json() == {"ok": True, "duplicate": True}

        other = event()
        tampered = other.replace("room_started", "room_finished")
        refused = [
            await post(http, tampered, signature(other)),  # body changed after signing
            await post(http, other, None),  # unsigned
            await post(http, other, signature(other, ttl_s=-120)),  # expired
            await post(http, other, signature(other, key="APIother", secret="x" * 40)),
            await post(http, other, "Bearer " + signature(other)[:-4] + "AAAA"),  # forged
        ]
        assert [r.status_code for r in refused] == [401] * 5
