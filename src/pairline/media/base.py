"""The media interface the engine uses, and the factory that picks the kind from settings."""

from __future__ import annotations

from typing import Any, Protocol

from pairline.settings import Settings


class Media(Protocol):
    async def prepare(self, match_id: str, users: tuple[str, str]) -> None:
        """The match is about to be confirmed: make what its users will join (a room)."""

    def room_of(self, match_id: str) -> str | None:
        """The media room of the match, for its record (None: peer-to-peer)."""

    def describe(self, match_id: str, users: tuple[str, str], user_id: str) -> dict[str, Any]:
        """`match_confirmed.media` for one user of the match (users[0] waited longer)."""

    async def on_ended(self, match_id: str) -> None:
        """The call is over: release whatever the match held."""


def open_media(settings: Settings) -> Media:
    """LiveKit when all three LiveKit settings are given, else peer-to-peer."""
    if settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret:
        from pairline.media.livekit import LiveKitMedia

        return LiveKitMedia(
            settings.livekit_url,
            settings.livekit_api_key,
            settings.livekit_api_secret,
            token_ttl_s=settings.livekit_token_ttl_s,
            empty_timeout_s=settings.livekit_empty_timeout_s,
            departure_timeout_s=settings.livekit_departure_timeout_s,
        )
    from pairline.media.p2p import PeerToPeer

    return PeerToPeer(
        settings.ice_servers,
        turn_urls=settings.turn_urls,
        turn_secret=settings.turn_secret,
        turn_ttl_s=settings.turn_ttl_s,
    )
