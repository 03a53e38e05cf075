"""A pairline server pointed at the LiveKit stand-in; webhooks signed as LiveKit signs them."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx
from livekit import api

from tests.media.twirp_server import TwirpRoomServer

KEY, SECRET = "APIpairlinee2e", "pairline-livekit-e2e-secret-long-enough"


def settings_for(livekit: TwirpRoomServer) -> dict[str, str]:
    return {"LIVEKIT_URL": livekit.url, "LIVEKIT_API_KEY": KEY, "LIVEKIT_API_SECRET": SECRET}


def participant_event(kind: str, event_id: str, match_id: str, user_id: str) -> str:
    """A LiveKit webhook body about one participant of the match's room."""
    return json.dumps(
        {
            "event": kind,
            "id": event_id,
            "room": {"name": f"pairline-{match_id}"},
            "participant": {"identity": user_id},
        }
    )


async def post_webhook(http: httpx.AsyncClient, body: str) -> httpx.Response:
    """POST `body` signed as LiveKit signs its webhooks."""
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = api.AccessToken(KEY, SECRET).with_sha256(digest).to_jwt()
    return await http.post("/v1/livekit/webhook", content=body, headers={"Authorization": token})
