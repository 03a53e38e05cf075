"""The SSE + HTTP fallback's routes (protocol.md §1): `GET /v1/events`, `POST /v1/commands`.

HTTP only: who is asking, what they sent, and which status says so. The transport itself (the
stream as a session's connection, hellos, message order, flood limits) is `transport.sse`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pairline import metrics
from pairline.api.common import bearer_identity, runtime_of
from pairline.core.protocol import Ack, CloseCode, Hello, command_id_of, decode
from pairline.errors import (
    BadRequest,
    Banned,
    Internal,
    InvalidState,
    ProtocolError,
    RateLimited,
    TooLarge,
    Unauthorized,
)
from pairline.transport.sse import HEADERS, Refused, SseStream, SseTransport

SESSION_HEADER = "x-pairline-session"
ACCEPTED = b'{"ok":true}'

# A refused stream's close code → the status and error its request is answered with.
_REFUSALS: dict[int, tuple[int, type[ProtocolError]]] = {
    CloseCode.BAD_HELLO: (401, Unauthorized),
    CloseCode.BANNED: (403, Banned),
    CloseCode.FLOOD: (429, RateLimited),
    CloseCode.TRY_AGAIN_LATER: (503, Internal),
}


def sse_transport(request: Request) -> SseTransport:
    """The node's SSE transport, made at its first use."""
    state = request.app.state
    transport: SseTransport | None = getattr(state, "sse", None)
    if transport is None:
        runtime = runtime_of(request)
        transport = SseTransport(runtime.gateway, runtime.flood)
        state.sse = transport
    return transport


def _error(status: int, exc: ProtocolError, re: str | None = None) -> JSONResponse:
    metrics.ERRORS.labels(exc.code).inc()
    return JSONResponse(exc.to_wire(re), status_code=status)


async def events(request: Request) -> Response:
    """Open the caller's event stream: the request is the hello (token, resume)."""
    if request.method == "HEAD":  # (Starlette routes HEAD here too): no hello, no takeover
        return Response(status_code=200, headers={k.decode(): v.decode() for k, v in HEADERS})
    token = request.query_params.get("token", "")
    session_id = request.query_params.get("session") or None
    last_event_id: int | None = None
    raw_id = request.headers.get("last-event-id", "").strip()
    if raw_id:
        if not raw_id.isdecimal():
            return _error(400, BadRequest("Last-Event-ID must be a seq (a whole number)"))
        last_event_id = int(raw_id)
    transport = sse_transport(request)
    verified = await runtime_of(request).auth.verify(token) if token else None
    if verified is None:
        return _error(401, Unauthorized("a valid token is required: ?token=…"))
    resume = transport.resume_target(verified.identity.user_id, session_id, last_event_id)
    peer = request.client.host if request.client else None
    stream = await transport.open(token, resume, last_event_id or 0, peer)
    if stream.closing:
        status, error = _REFUSALS.get(stream.close_code or 0, (503, Internal))
        return _error(status, error(stream.close_reason or "the stream was refused"))
    return EventStreamResponse(transport, stream)


class EventStreamResponse(Response):
    """The open stream as the response body, for as long as either side keeps it."""

    def __init__(self, transport: SseTransport, stream: SseStream) -> None:
        self.transport = transport
        self.stream = stream
        self.status_code = 200
        self.raw_headers = list(HEADERS)
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await self.transport.serve(self.stream, receive, send)


async def commands(request: Request) -> Response:
    """One client message for the caller's stream: 202 once taken; its answer (if any) comes
    on the stream."""
    identity = await bearer_identity(request)  # 401 without a valid token
    runtime = runtime_of(request)
    session_id = request.headers.get(SESSION_HEADER, "")
    session = runtime.registry.get(identity.user_id)
    if not session_id or session is None or session.session_id != session_id:
        # With several nodes, this is also what a POST to a node without the stream gets.
        return _error(401, Unauthorized(f"no such session here: send {SESSION_HEADER}"))
    body = await _read_body(request, runtime.settings.max_frame_bytes)
    if body is None:
        return _error(400, TooLarge("the body is larger than one message may be"))
    try:
        message = decode(body)
    except ProtocolError as exc:
        return _error(400, exc, command_id_of(body))
    if isinstance(message, Hello):
        return _error(400, BadRequest("no hello here: GET /v1/events is the hello"))
    if isinstance(message, Ack) and message.seq > session.seq:
        return _error(
            400, BadRequest(f"ack for seq {message.seq}, but the last one sent is {session.seq}")
        )
    refused = sse_transport(request).post(session, body)
    if refused is Refused.FLOOD:
        return _error(429, RateLimited("too many messages: the stream is closed (4429)"))
    if refused is Refused.NO_STREAM:
        return _error(
            409,
            InvalidState("this session has no open event stream here: reopen GET /v1/events"),
        )
    return Response(ACCEPTED, status_code=202, media_type="application/json")


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it runs past `limit` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


ROUTES: list[Any] = [
    Route("/v1/events", events, methods=["GET"]),
    Route("/v1/commands", commands, methods=["POST"]),
]
