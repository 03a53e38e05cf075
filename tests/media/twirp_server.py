"""A stand-in LiveKit RoomService: real HTTP, real Twirp protobuf bodies, real JWT checks.

No LiveKit server can run in the test environment, so this speaks the part of its Twirp API
that `LiveKitMedia` uses (CreateRoom, DeleteRoom, ListRooms, ListParticipants), parsing
requests with the `livekit.protocol` classes the SDK serializes with, and can be told to fail
(HTTP 5xx) or hang the next N calls.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from google.protobuf.message import Message
from livekit import api
from livekit.protocol import models, room
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PREFIX = "/twirp/livekit.RoomService/"
PROTOBUF = "application/protobuf"


@dataclass(frozen=True)
class Call:
    method: str
    request: Message
    at: float  # time.monotonic() when the (authenticated) request arrived


@dataclass
class TwirpRoomServer:
    api_key: str
    api_secret: str
    rooms: dict[str, models.Room] = field(default_factory=dict)
    # Who is in each room (identities), as a test puts them there.
    participants: dict[str, list[str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    # Per method, what the next calls do instead of answering: an HTTP status, or "hang".
    faults: dict[str, list[int | str]] = field(default_factory=dict)
    url: str = ""
    # Set at shutdown so hung handlers end and uvicorn can stop.
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _hung: asyncio.Condition = field(default_factory=asyncio.Condition)
    hung_count: int = 0
    _answered: asyncio.Condition = field(default_factory=asyncio.Condition)

    def fail(self, method: str, times: int, status: int = 500) -> None:
        self.faults.setdefault(method, []).extend([status] * times)

    def hang(self, method: str, times: int) -> None:
        self.faults.setdefault(method, []).extend(["hang"] * times)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_until(self, condition: Callable[[], bool], within_s: float = 5) -> None:
        """Until `condition()` holds, checked after each call answered."""
        async with self._answered:
            await asyncio.wait_for(self._answered.wait_for(condition), within_s)

    async def wait_hung(self, n: int) -> None:
        """Until `n` requests in total have started hanging."""
        async with self._hung:
            await self._hung.wait_for(lambda: self.hung_count >= n)

    # --- handlers -------------------------------------------------------------------------

    def _create(self, req: room.CreateRoomRequest) -> Message:
        if req.name not in self.rooms:  # like LiveKit: creating an existing room returns it
            self.rooms[req.name] = models.Room(
                sid="RM_" + req.name,
                name=req.name,
                empty_timeout=req.empty_timeout,
                departure_timeout=req.departure_timeout,
                max_participants=req.max_participants,
                creation_time=int(time.time()),
            )
        return self.rooms[req.name]

    def _delete(self, req: room.DeleteRoomRequest) -> Message | None:
        if self.rooms.pop(req.room, None) is None:
            return None
        return room.DeleteRoomResponse()

    def _list(self, req: room.ListRoomsRequest) -> Message:
        names = set(req.names)
        return room.ListRoomsResponse(
            rooms=[r for n, r in self.rooms.items() if not names or n in names]
        )

    def _participants(self, req: room.ListParticipantsRequest) -> Message | None:
        if req.room not in self.rooms:
            return None
        identities = self.participants.get(req.room, [])
        return room.ListParticipantsResponse(
            participants=[models.ParticipantInfo(identity=i, sid="PA_" + i) for i in identities]
        )

    async def _endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        spec = _METHODS.get(method)
        if spec is None:
            return _twirp_error(404, "bad_route", f"no method {method}")
        request_class, grant, handler = spec
        if request.headers.get("content-type") != PROTOBUF:
            return _twirp_error(400, "malformed", "content-type must be application/protobuf")
        denied = self._check_auth(request.headers.get("authorization", ""), grant)
        if denied is not None:
            return denied
        message = request_class.FromString(await request.body())
        self.calls.append(Call(method, message, time.monotonic()))
        queued = self.faults.get(method)
        if queued:
            fault = queued.pop(0)
            if fault == "hang":
                async with self._hung:
                    self.hung_count += 1
                    self._hung.notify_all()
                await self._release.wait()
                return _twirp_error(503, "unavailable", "released at shutdown")
            assert isinstance(fault, int)
            return _twirp_error(fault, "internal", "injected failure")
        answer = handler(self, message)
        async with self._answered:
            self._answered.notify_all()
        if answer is None:
            return _twirp_error(404, "not_found", "requested room does not exist")
        return Response(answer.SerializeToString(), media_type=PROTOBUF)

    def _check_auth(self, header: str, grant: str) -> Response | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _twirp_error(401, "unauthenticated", "no bearer token")
        try:
            claims = api.TokenVerifier(self.api_key, self.api_secret).verify(token)
        except Exception as exc:
            return _twirp_error(401, "unauthenticated", f"invalid token: {exc}")
        if claims.video is None or not getattr(claims.video, grant):
            return _twirp_error(403, "permission_denied", f"needs grant {grant}")
        return None

    def app(self, started: asyncio.Event) -> Starlette:
        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            started.set()
            yield

        routes = [Route(PREFIX + "{method}", self._endpoint, methods=["POST"])]
        return Starlette(routes=routes, lifespan=lifespan)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TwirpRoomServer]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        # Listening now: a request sent before uvicorn accepts waits in the backlog.
        sock.listen(128)
        port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        started = asyncio.Event()
        config = uvicorn.Config(self.app(started), log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        await started.wait()
        try:
            yield self
        finally:
            self._release.set()
            server.should_exit = True
            await task
            sock.close()


Handler = Callable[[TwirpRoomServer, Any], Message | None]

_METHODS: dict[str, tuple[type[Message], str, Handler]] = {
    "CreateRoom": (room.CreateRoomRequest, "room_create", TwirpRoomServer._create),
    "DeleteRoom": (room.DeleteRoomRequest, "room_create", TwirpRoomServer._delete),
    "ListRooms": (room.ListRoomsRequest, "room_list", TwirpRoomServer._list),
    "ListParticipants": (
        room.ListParticipantsRequest,
        "room_admin",
        TwirpRoomServer._participants,
    ),
}


def _twirp_error(status: int, code: str, msg: str) -> Response:
    # Twirp errors are JSON whatever the request's content type.
    return JSONResponse({"code": code, "msg": msg}, status_code=status)
