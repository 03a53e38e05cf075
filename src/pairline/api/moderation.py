"""Blocks (each user's own) and the admin API: reports, bans.

The admin API exists only when `PAIRLINE_ADMIN_TOKEN` is set (404 otherwise) and answers only to
that bearer token. A ban is written to the database before it acts, so a ban the admin was told
about survives any crash; if the database cannot take it, the admin gets 503 and nothing changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pairline.api.common import bearer_identity, runtime_of
from pairline.api.runtime import Runtime
from pairline.auth import clean_display_name
from pairline.engine.clock import now_ms
from pairline.errors import BadRequest, NotFound, ProtocolError, Unauthorized
from pairline.records.repository import Records

log = structlog.get_logger("pairline.moderation")

MAX_REASON_CHARS = 200


class Unavailable(ProtocolError):
    """The records database cannot be reached right now (HTTP 503)."""

    code = "internal"
    http_status = 503


def _records(runtime: Runtime) -> Records:
    assert runtime.keeping is not None, "records are opened at start-up"
    return runtime.keeping.records


# ---------------------------------------------------------------- a user's own blocks


async def list_blocks(request: Request) -> Response:
    identity = await bearer_identity(request)
    runtime = runtime_of(request)
    # The records lag the outbox by a moment: what is still on its way is shown once there.
    await _wait_for_records(runtime)
    blocks = await _records(runtime).blocks_of(identity.user_id)
    return JSONResponse(
        {"blocks": [{"user_id": user_id, "blocked_at": at} for user_id, at in blocks]}
    )


async def unblock(request: Request) -> Response:
    identity = await bearer_identity(request)
    blocked = request.path_params["user_id"]
    await runtime_of(request).engine.unblock(identity.user_id, blocked)
    return Response(status_code=204)


# ---------------------------------------------------------------- admin


def _admin(request: Request) -> Runtime:
    runtime = runtime_of(request)
    expected = runtime.settings.admin_token
    if not expected:
        raise NotFound("the admin API is off (PAIRLINE_ADMIN_TOKEN is not set)")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), expected):
        raise Unauthorized("the admin token is required")
    return runtime


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None


async def list_reports(request: Request) -> Response:
    runtime = _admin(request)
    await _wait_for_records(runtime)
    limit = _int_param(request, "limit") or 50
    if not 1 <= limit <= 500:
        raise BadRequest("limit must be between 1 and 500")
    query = request.query_params
    reports = await _records(runtime).list_reports(
        reported=query.get("reported"),
        reporter=query.get("reporter"),
        reason=query.get("reason"),
        since=_int_param(request, "since"),
        until=_int_param(request, "until"),
        limit=limit,
        before_id=_int_param(request, "before_id"),
    )
    more = reports[-1]["id"] if len(reports) == limit else None
    return JSONResponse({"reports": reports, "next_before_id": more})


async def list_bans(request: Request) -> Response:
    runtime = _admin(request)
    bans = await _records(runtime).active_bans(now_ms())
    return JSONResponse({"bans": [{"user_id": u, "until": until} for u, until in bans.items()]})


async def ban(request: Request) -> Response:
    runtime = _admin(request)
    body = await _json_object(request)
    user_id = body.get("user_id")
    reason = clean_display_name(str(body.get("reason") or ""))[:MAX_REASON_CHARS]
    duration_s = body.get("duration_s")
    if not isinstance(user_id, str) or not user_id:
        raise BadRequest("user_id is required")
    if duration_s is not None and (not isinstance(duration_s, int) or duration_s <= 0):
        raise BadRequest("duration_s must be a positive integer, or null for a ban for good")
    now = now_ms()
    until = now + duration_s * 1000 if duration_s is not None else None
    try:
        await _records(runtime).ban(user_id, reason, until, "admin", now)
    except Exception as exc:  # the database: nothing changed, the admin may retry
        log.error("ban_not_recorded", user_id=user_id, error=str(exc))
        raise Unavailable("the records database is unreachable; the ban was not made") from exc
    await runtime.engine.ban(user_id, until)
    log.warning("banned", user_id=user_id, until=until, reason=reason)
    return JSONResponse({"user_id": user_id, "until": until, "reason": reason}, status_code=201)


async def unban(request: Request) -> Response:
    runtime = _admin(request)
    user_id = request.path_params["user_id"]
    try:
        had = await _records(runtime).unban(user_id)
    except Exception as exc:
        raise Unavailable("the records database is unreachable; nothing changed") from exc
    await runtime.engine.unban(user_id)
    if not had:
        raise NotFound(f"{user_id} is not banned")
    log.warning("unbanned", user_id=user_id)
    return Response(status_code=204)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


async def _wait_for_records(runtime: Runtime) -> None:
    """Give the outbox a moment to reach the database, so a list includes what was just done."""
    assert runtime.keeping is not None
    keeping = runtime.keeping
    if keeping.drainer.backlog:
        # The database is slow or away: show what it has.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(keeping.drainer.drained(), 2.0)


ROUTES = [
    Route("/v1/blocks", list_blocks, methods=["GET"]),
    Route("/v1/blocks/{user_id}", unblock, methods=["DELETE"]),
    Route("/v1/admin/reports", list_reports, methods=["GET"]),
    Route("/v1/admin/bans", list_bans, methods=["GET"]),
    Route("/v1/admin/bans", ban, methods=["POST"]),
    Route("/v1/admin/bans/{user_id}", unban, methods=["DELETE"]),
]
