"""The media interface the engine uses, and the factory that picks the kind from settings."""

from __future__ import annotations

from typing import Any, Protocol

from pairline.settings import Settings


class Media(Protocol):
    def describe(self, match_id: str, users: tuple[str, str], user_id: str) -> dict[str, Any]:
        """`match_confirmed.media` for one user of the match (users[0] waited longer)."""

    async def on_ended(self, match_id: str) -> None:
        """The call is over: release whatever the match held."""


def open_media(settings: Settings) -> Media:
    from pairline.media.p2p import PeerToPeer

    return PeerToPeer(settings.ice_servers)
