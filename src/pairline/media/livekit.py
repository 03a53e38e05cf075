"""LiveKit SFU: one two-seat room per match, a join token per user, the room deleted at the end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import timedelta
from typing import Any, TypeVar

import aiohttp
from livekit import api

log = logging.getLogger(__name__)

ROOM_PREFIX = "pairline-"

T = TypeVar("T")
# Which of these match ids are not over (the store's `live_matches`).
LiveCheck = Callable[[list[str]], Awaitable[Collection[str]]]


class MediaUnavailable(Exception):
    """LiveKit answered an error or did not answer in time: the match cannot get a room."""


class LiveKitMedia:
    """Rooms via LiveKit's RoomService (Twirp); join tokens are signed locally with the secret."""

    def __init__(
        self,
        url: str,
        api_key: str,
        api_secret: str,
        *,
        token_ttl_s: int = 600,
        empty_timeout_s: int = 30,
        departure_timeout_s: int = 20,
        http_timeout_s: float = 5.0,
        delete_retries: tuple[float, ...] = (0.5, 1, 2, 4, 8),
    ) -> None:
        self.url = url
        self._api_key = api_key
        self._api_secret = api_secret
        self.token_ttl_s = token_ttl_s
        self.empty_timeout_s = empty_timeout_s
        self.departure_timeout_s = departure_timeout_s
        self.http_timeout_s = http_timeout_s
        self.delete_retries = delete_retries
        # Rooms whose deletion failed after every retry; `sweep` tries them again.
        self.undeleted: set[str] = set()
        # Created on first use: the SDK opens an aiohttp session, which wants a running loop.
        self._lkapi: api.LiveKitAPI | None = None

    @staticmethod
    def room_name(match_id: str) -> str:
        return ROOM_PREFIX + match_id

    def room_of(self, match_id: str) -> str | None:
        """The room name, for the match's record (the `Media` protocol)."""
        return self.room_name(match_id)

    def _api(self) -> api.LiveKitAPI:
        if self._lkapi is None:
            # failover=False: the SDK's own region failover would replay requests on its own
            # schedule; our retry policy (delete_retries, sweep) is the only one.
            self._lkapi = api.LiveKitAPI(
                self.url,
                self._api_key,
                self._api_secret,
                timeout=aiohttp.ClientTimeout(total=self.http_timeout_s),
                failover=False,
            )
        return self._lkapi

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        # The outer timeout also bounds what aiohttp's total timeout may not (e.g. DNS, pool wait).
        async with asyncio.timeout(self.http_timeout_s):
            return await request()

    async def prepare(self, match_id: str, users: tuple[str, str]) -> None:
        """Create the match's room before either user is told about it."""
        room = self.room_name(match_id)
        req = api.CreateRoomRequest(
            name=room,
            empty_timeout=self.empty_timeout_s,
            departure_timeout=self.departure_timeout_s,
            max_participants=2,
        )
        try:
            await self._call(lambda: self._api().room.create_room(req))
        except (api.ServerError, aiohttp.ClientError, TimeoutError) as exc:
            if not isinstance(exc, api.ServerError):
                # A request that timed out may still have created the room: leave it to the sweep.
                self.undeleted.add(room)
            raise MediaUnavailable(f"LiveKit CreateRoom {room}: {exc!r}") from exc

    def describe(self, match_id: str, users: tuple[str, str], user_id: str) -> dict[str, Any]:
        if user_id not in users:
            raise ValueError(f"{user_id!r} is not a user of match {match_id!r}")
        room = self.room_name(match_id)
        token = (
            api.AccessToken(self._api_key, self._api_secret)
            .with_identity(user_id)
            .with_name(user_id)
            .with_grants(api.VideoGrants(room_join=True, room=room))
            .with_ttl(timedelta(seconds=self.token_ttl_s))
            .to_jwt()
        )
        return {"kind": "livekit", "url": self.url, "room": room, "token": token}

    async def _delete_once(self, room: str) -> bool:
        try:
            await self._call(lambda: self._api().room.delete_room(api.DeleteRoomRequest(room=room)))
        except api.ServerError as exc:
            if exc.status == 404:  # already gone (emptied and closed by LiveKit): done
                return True
            log.warning("livekit DeleteRoom %s failed: %s", room, exc)
            return False
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("livekit DeleteRoom %s failed: %r", room, exc)
            return False
        return True

    async def on_ended(self, match_id: str) -> None:
        """Delete the room; retried per `delete_retries`, never raises."""
        room = self.room_name(match_id)
        for delay in (None, *self.delete_retries):
            if delay is not None:
                await asyncio.sleep(delay)
            if await self._delete_once(room):
                self.undeleted.discard(room)
                return
        self.undeleted.add(room)

    async def participants(self, match_id: str) -> list[str]:
        """The identities (user ids) in the match's room now; [] if LiveKit has no such room.
        Raises MediaUnavailable when LiveKit cannot tell."""
        room = self.room_name(match_id)
        req = api.ListParticipantsRequest(room=room)
        try:
            listed = await self._call(lambda: self._api().room.list_participants(req))
        except api.ServerError as exc:
            if exc.status == 404:
                return []
            raise MediaUnavailable(f"LiveKit ListParticipants {room}: {exc!r}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise MediaUnavailable(f"LiveKit ListParticipants {room}: {exc!r}") from exc
        return [p.identity for p in listed.participants]

    async def sweep(self, live_of: LiveCheck) -> int:
        """Delete every pairline room whose match is over (`live_of` says which of the given
        match ids are not); returns how many were deleted."""
        try:
            listed = await self._call(lambda: self._api().room.list_rooms(api.ListRoomsRequest()))
        except (api.ServerError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("livekit ListRooms failed: %r", exc)
            return 0
        existing = {r.name for r in listed.rooms if r.name.startswith(ROOM_PREFIX)}
        live_ids = await live_of([room.removeprefix(ROOM_PREFIX) for room in existing])
        live = {self.room_name(m) for m in live_ids}
        # An undeleted room LiveKit no longer lists is gone (e.g. closed by its empty_timeout).
        self.undeleted &= existing
        deleted = 0
        for room in sorted(existing - live):
            if await self._delete_once(room):
                self.undeleted.discard(room)
                deleted += 1
            else:
                self.undeleted.add(room)
        return deleted

    def webhook_receiver(self) -> api.WebhookReceiver:
        """Verifies LiveKit's webhook calls (JWT signed with our secret, body sha256 claim)."""
        return api.WebhookReceiver(api.TokenVerifier(self._api_key, self._api_secret))

    async def close(self) -> None:
        if self._lkapi is not None:
            await self._lkapi.aclose()
            self._lkapi = None
