"""Users signed in with the operator's own tokens (HS256 here; JWKS is tested in tests/identity)."""

from __future__ import annotations

import base64
import json
import time

import jwt
from websockets.asyncio.client import connect as ws_connect

from tests.conftest import ServerFactory
from tests.e2e.rawws import raw_session, ws_url

JWT_SECRET = "operator-secret-of-at-least-32-bytes!"


def operator_token(sub: str, name: str, *, ttl_s: int = 300, key: str = JWT_SECRET) -> str:
    claims = {"sub": sub, "name": name, "exp": int(time.time()) + ttl_s}
    return jwt.encode(claims, key, algorithm="HS256")


async def test_operator_users_meet_under_opaque_stable_ids(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_JWT_SECRET=JWT_SECRET, PAIRLINE_SECRET="s" * 32)
    ann_token = operator_token("user-42", "Ann")
    async with raw_session(server.url, ann_token) as ann:
        ann_id = ann.welcome["user_id"]
        assert ann_id.startswith("o_") and "user-42" not in ann_id
        await ann.send({"type": "join", "id": "j"})
        await ann.next("reply")
        async with raw_session(server.url, operator_token("user-43", "Bob")) as bob:
            await bob.send({"type": "join", "id": "j"})
            matched = await bob.next("matched")
            assert matched["partner"]["user_id"] == ann_id
            assert matched["partner"]["display_name"] == "Ann"
    async with raw_session(server.url, operator_token("user-42", "Ann")) as again:
        assert again.welcome["user_id"] == ann_id  # the same person, the same id


async def _closed_code(url: str, token: str) -> int | None:
    async with ws_connect(ws_url(url)) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": token}))
        await ws.wait_closed()
        return ws.close_code


async def test_expired_forged_and_unsigned_tokens_close_4401(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_JWT_SECRET=JWT_SECRET)
    expired = operator_token("u1", "A", ttl_s=-120)
    forged = operator_token("u1", "A", key="another-secret-of-at-least-32-bytes")
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    body = {"sub": "u1", "exp": int(time.time()) + 300}
    payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    for token in (expired, forged, f"{header}.{payload}."):
        assert await _closed_code(server.url, token) == 4401
