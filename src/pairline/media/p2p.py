"""Peer-to-peer WebRTC: the server only relays `signal` messages and assigns roles."""

from __future__ import annotations

import time
from typing import Any

from pairline.media.turn import ice_servers_for


class PeerToPeer:
    """The longer-waiting user makes the offer; both get the configured ICE servers, and
    credentials of their own for the TURN server when one is configured."""

    def __init__(
        self,
        ice_servers: list[dict[str, Any]],
        *,
        turn_urls: list[str] | None = None,
        turn_secret: str | None = None,
        turn_ttl_s: int = 3600,
    ) -> None:
        self.ice_servers = ice_servers
        self.turn_urls = (turn_urls or []) if turn_secret else []  # no secret, no TURN
        self.turn_secret = turn_secret or ""
        self.turn_ttl_s = turn_ttl_s

    async def prepare(self, match_id: str, users: tuple[str, str]) -> None:
        return None  # nothing to make: the two browsers connect to each other

    def room_of(self, match_id: str) -> str | None:
        return None

    def describe(self, match_id: str, users: tuple[str, str], user_id: str) -> dict[str, Any]:
        role = "offerer" if user_id == users[0] else "answerer"
        ice_servers = ice_servers_for(
            user_id,
            self.ice_servers,
            self.turn_urls,
            self.turn_secret,
            self.turn_ttl_s,
            int(time.time()),
        )
        return {"kind": "p2p", "role": role, "ice_servers": ice_servers}

    async def on_ended(self, match_id: str) -> None:
        return None
