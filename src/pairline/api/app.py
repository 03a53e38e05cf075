"""The ASGI app: guest auth, status, health, the OpenAPI document, and the WebSocket route.

Under `pairline serve` the WebSocket path is served by `transport.native_ws` before ASGI is
involved; the ASGI route below serves it under any other ASGI server.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from pairline import metrics
from pairline.api.common import bearer_identity, runtime_of
from pairline.api.livekit_webhook import ROUTES as LIVEKIT_ROUTES
from pairline.api.logs import configure_logging
from pairline.api.metrics_route import ROUTES as METRICS_ROUTES
from pairline.api.moderation import ROUTES as MODERATION_ROUTES
from pairline.api.openapi import OPENAPI
from pairline.api.runtime import Runtime
from pairline.api.sse_routes import ROUTES as SSE_ROUTES
from pairline.api.web import ROUTES as WEB_ROUTES
from pairline.errors import BadRequest, ProtocolError, RateLimited
from pairline.settings import Settings
from pairline.transport.asgi_ws import websocket_endpoint

GC_THRESHOLDS = (50_000, 20, 100)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)
    runtime = Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await runtime.start()
        gc.collect()
        gc.freeze()  # start-up objects live forever: keep them out of every collection
        # Every message allocates a little and cycles are rare: collect young objects less
        # often (measured: at thousands of users the default thresholds cost a third of the CPU).
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield {"pairline": runtime}
        finally:
            await runtime.stop()

    app = Starlette(
        routes=[
            Route("/v1/auth/guest", guest_token, methods=["POST"]),
            Route("/v1/status", status, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            *METRICS_ROUTES,
            *MODERATION_ROUTES,
            *LIVEKIT_ROUTES,
            *SSE_ROUTES,
            WebSocketRoute("/v1/ws", websocket_endpoint),
            *WEB_ROUTES,
        ],
        lifespan=lifespan,
        exception_handlers={ProtocolError: protocol_error},
    )
    app.state.runtime = runtime
    return app


async def guest_token(request: Request) -> Response:
    name: str | None = None
    body = await request.body()
    if body:
        try:
            data = await request.json()
        except ValueError:
            raise BadRequest("the body must be JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("display_name", ""), str | None):
            raise BadRequest('expected {"display_name": "…"}')
        name = data.get("display_name")
    runtime = runtime_of(request)
    address = request.client.host if request.client else "?"
    limit = runtime.guest_token_limit
    now = time.monotonic()
    if not limit.take(address, now):
        metrics.RATE_LIMITED.labels("guest_tokens").inc()
        retry_after_s = limit.retry_after(address, now)
        raise RateLimited(
            "too many guest tokens from this address", retry_after_ms=int(retry_after_s * 1000)
        )
    token, identity = runtime.tokens.issue(name)
    return JSONResponse(
        {"token": token, "user_id": identity.user_id, "expires_in_s": runtime.tokens.ttl_s}
    )


async def status(request: Request) -> Response:
    identity = await bearer_identity(request)
    return JSONResponse(await runtime_of(request).engine.snapshot(identity.user_id))


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def readyz(request: Request) -> Response:
    ready = runtime_of(request).ready
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


async def openapi(request: Request) -> Response:
    return JSONResponse(OPENAPI)


async def protocol_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProtocolError)
    metrics.ERRORS.labels(exc.code).inc()
    status_code = {"unauthorized": 401, "not_found": 404, "rate_limited": 429}.get(exc.code, 400)
    if exc.code == "internal":
        status_code = getattr(exc, "http_status", 500)
    headers = {}
    if exc.retry_after_ms:
        headers["Retry-After"] = str(-(-exc.retry_after_ms // 1000))
    return JSONResponse(exc.to_wire(), status_code=status_code, headers=headers)
