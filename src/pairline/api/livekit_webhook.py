"""`POST /v1/livekit/webhook`: LiveKit's room and participant events, verified and deduplicated.

LiveKit signs each delivery with a JWT (in `Authorization`, bare) whose `sha256` claim covers the
exact raw body; the SDK's `WebhookReceiver` checks both. LiveKit retries and may reorder, so each
event id is handled once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pairline import metrics
from pairline.api.common import runtime_of
from pairline.engine.clock import now_ms
from pairline.errors import NotFound, Unauthorized

if TYPE_CHECKING:
    from pairline.api.runtime import Runtime

log = structlog.get_logger("pairline.livekit")

ROOM_PREFIX = "pairline-"


async def livekit_webhook(request: Request) -> Response:
    runtime = runtime_of(request)
    receiver = runtime.livekit_receiver
    if receiver is None:
        raise NotFound("LiveKit is not configured")
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        event = receiver.receive(body, request.headers.get("authorization", ""))
    except Exception as exc:  # unsigned, tampered, expired or another key's: all the same
        raise Unauthorized(f"the webhook is not signed by this LiveKit: {exc}") from None
    if event.id and not runtime.livekit_seen.first_time(event.id):
        return JSONResponse({"ok": True, "duplicate": True})
    room = event.room.name if event.HasField("room") else ""
    match_id = room.removeprefix(ROOM_PREFIX) if room.startswith(ROOM_PREFIX) else None
    identity = event.participant.identity if event.HasField("participant") else None
    log.info("livekit_event", kind=event.event, match_id=match_id, user_id=identity)
    watch = runtime.room_watch
    assert watch is not None  # set with the receiver
    if match_id is None:
        return JSONResponse({"ok": True})  # not a room of ours
    if identity and event.event == "participant_left":
        # Their media is gone: if their connection is gone too the call ends now, else they
        # are health-checked now, rather than after the heartbeat or the resume window.
        await runtime.engine.media_gone(identity, match_id)
        await watch.room_changed(match_id)
    elif identity and event.event == "participant_joined":
        await watch.room_changed(match_id)
        await _log_time_to_media(runtime, match_id, identity)
    elif event.event == "room_finished":
        await watch.room_finished(match_id)
    return JSONResponse({"ok": True})


async def _log_time_to_media(runtime: Runtime, match_id: str, user_id: str) -> None:
    """How long from `match_confirmed` until the user's media reached the room, from the call's
    record (any node may receive the webhook; the record may lag by a moment, or the database
    be away: then the line says so)."""
    confirmed_at = None
    if runtime.keeping is not None:
        try:
            call = await runtime.keeping.records.call(match_id)
        except Exception:
            call = None
        confirmed_at = call["confirmed_at"] if call else None
    took = now_ms() - confirmed_at if confirmed_at is not None else None
    if took is not None:
        metrics.CONFIRM_TO_MEDIA.observe(max(0, took) / 1000)
    log.info("media_joined", match_id=match_id, user_id=user_id, confirm_to_media_ms=took)


ROUTES = [Route("/v1/livekit/webhook", livekit_webhook, methods=["POST"])]
