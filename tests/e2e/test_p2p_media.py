"""Peer-to-peer media: roles, the configured ICE servers, and per-user TURN credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from pairline.client import Client
from tests.conftest import ServerFactory
from tests.e2e.test_matching import confirmed_pair

STUN = {"urls": ["stun:stun.example.org:3478"]}


async def test_each_user_gets_its_role_the_ice_servers_and_its_own_turn_credentials(
    start_server: ServerFactory,
) -> None:
    server = await start_server(
        PAIRLINE_ICE_SERVERS=json.dumps([STUN]),
        PAIRLINE_TURN_URLS="turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349",
        PAIRLINE_TURN_SECRET="turn-shared-secret",
        PAIRLINE_TURN_TTL_S=600,
    )
    async with (
        Client(server.url, display_name="ann") as ann,
        Client(server.url, display_name="bob") as bob,
    ):
        await ann.join()
        await bob.join()  # ann waited longer: she makes the offer
        await confirmed_pair(ann, bob)
        roles = {}
        for client in (ann, bob):
            (confirmed,) = [e for e in client.events_log if e.type == "match_confirmed"]
            media = confirmed.raw["media"]
            roles[client.display_name] = media["role"]
            stun, turn = media["ice_servers"]
            assert stun == STUN
            assert turn["urls"] == [
                "turn:turn.example.org:3478?transport=udp",
                "turns:turn.example.org:5349",
            ]
            expiry, user = turn["username"].split(":")
            assert user == client.user_id
            assert 0 < int(expiry) - time.time() <= 600
            mac = hmac.new(b"turn-shared-secret", turn["username"].encode(), hashlib.sha1)
            assert turn["credential"] == base64.b64encode(mac.digest()).decode()
        assert roles == {"ann": "offerer", "bob": "answerer"}
