"""Peer-to-peer WebRTC: the server only relays `signal` messages and assigns roles."""

from __future__ import annotations

from typing import Any


class PeerToPeer:
    """The longer-waiting user makes the offer; both get the configured ICE servers."""

    def __init__(self, ice_servers: list[dict[str, Any]]) -> None:
        self.ice_servers = ice_servers

    async def prepare(self, match_id: str, users: tuple[str, str]) -> None:
        return None  # nothing to make: the two browsers connect to each other

    def room_of(self, match_id: str) -> str | None:
        return None

    def describe(self, match_id: str, users: tuple[str, str], user_id: str) -> dict[str, Any]:
        role = "offerer" if user_id == users[0] else "answerer"
        return {"kind": "p2p", "role": role, "ice_servers": self.ice_servers}

    async def on_ended(self, match_id: str) -> None:
        return None
