"""Every kind of bad input gets a clear answer, changes nothing, and the server keeps serving."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import connect as ws_connect

from tests.conftest import RunningServer
from tests.e2e.rawws import guest_token, raw_session, ws_url

BAD_MESSAGES: list[tuple[Any, str, str | None]] = [
    ("not json at all", "bad_request", None),
    ("[1, 2, 3]", "bad_request", None),
    ({"no_type": True}, "bad_request", None),
    ({"type": "dance", "id": "x1"}, "bad_request", "x1"),
    ({"type": "join"}, "bad_request", None),  # a command without its id
    ({"type": "join", "id": "x" * 65}, "bad_request", None),
    ({"type": "join", "id": "j1", "interests": ["a"] * 11}, "bad_request", "j1"),
    ({"type": "join", "id": "j2", "interests": ["a" * 33]}, "bad_request", "j2"),
    ({"type": "join", "id": "j3", "interests": "music"}, "bad_request", "j3"),
    ({"type": "skip", "id": "s1"}, "bad_request", "s1"),
    ({"type": "skip", "id": "s2", "match_id": "m_nope"}, "invalid_state", "s2"),
    (
        {"type": "report", "id": "r1", "match_id": "m", "reason": "spam", "details": "d" * 1001},
        "too_large",
        "r1",
    ),
    ({"type": "chat", "match_id": "m", "text": "t" * 2001}, "too_large", None),
    ({"type": "signal", "match_id": "m", "data": {"sdp": "x" * 17_000}}, "too_large", None),
    ({"type": "chat", "match_id": "m_nope", "text": "hi"}, "invalid_state", None),
    ({"type": "ack", "seq": 10_000}, "bad_request", None),
    ({"type": "ack", "seq": -1}, "bad_request", None),
    ({"type": "hello", "v": 1, "token": "again"}, "bad_request", None),
    ({"type": "leave", "id": "l1"}, "invalid_state", "l1"),
]


@pytest.mark.parametrize(("message", "code", "re"), BAD_MESSAGES)
async def test_bad_message_is_answered_and_changes_nothing(
    server: RunningServer, message: Any, code: str, re: str | None
) -> None:
    async with raw_session(server.url) as session:
        await session.send(message)
        error = await session.next("error")
        assert error["code"] == code, error
        assert error.get("re") == re
        assert isinstance(error["message"], str) and error["message"]
        # The same connection still works, and the user's state did not move.
        await session.send({"type": "join", "id": "after"})
        reply = await session.next("reply")
        assert reply["re"] == "after" and reply["ok"] is True and reply["position"] == 1


async def test_unknown_fields_are_ignored(server: RunningServer) -> None:
    async with raw_session(server.url) as session:
        await session.send({"type": "join", "id": "j", "colour": "blue", "interests": []})
        reply = await session.next("reply")
        assert reply["ok"] is True


async def test_over_long_chat_is_not_relayed(server: RunningServer) -> None:
    async with raw_session(server.url) as ann, raw_session(server.url) as bob:
        await ann.send({"type": "join", "id": "j"})
        await bob.send({"type": "join", "id": "j"})
        await ann.next("matched")  # each side acks its `matched` as it reads it
        await bob.next("matched")
        match_id = (await ann.next("match_confirmed"))["match_id"]
        await bob.next("match_confirmed")
        await ann.send({"type": "chat", "match_id": match_id, "text": "x" * 2001})
        assert (await ann.next("error"))["code"] == "too_large"
        await ann.send({"type": "chat", "match_id": match_id, "text": "fits"})
        assert (await bob.next("chat"))["text"] == "fits"  # the long one never arrived


@pytest.mark.parametrize(
    "payload",
    [b"\x00\x01binary", json.dumps({"type": "chat", "text": "x" * 70_000})],
    ids=["binary-frame", "oversized-frame"],
)
async def test_malformed_traffic_closes_with_4400(server: RunningServer, payload: Any) -> None:
    async with raw_session(server.url) as session:
        await session.send(payload)
        assert await session.closed_code() == 4400
    async with raw_session(server.url) as healthy:  # the server keeps serving
        assert healthy.welcome["state"]["status"] == "idle"


async def test_first_message_must_be_a_valid_hello(server: RunningServer) -> None:
    async with ws_connect(ws_url(server.url)) as ws:
        await ws.send(json.dumps({"type": "join", "id": "j"}))
        await ws.wait_closed()
        assert ws.close_code == 4401


async def test_a_bad_token_closes_with_4401(server: RunningServer) -> None:
    async with ws_connect(ws_url(server.url)) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": "forged.token.here"}))
        await ws.wait_closed()
        assert ws.close_code == 4401


async def test_a_token_signed_by_another_server_is_refused(
    server: RunningServer, start_server: Any
) -> None:
    other = await start_server()
    foreign = await guest_token(other.url)
    async with ws_connect(ws_url(server.url)) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "token": foreign}))
        await ws.wait_closed()
        assert ws.close_code == 4401


async def test_no_hello_within_5_s_closes_with_4401(server: RunningServer) -> None:
    async with ws_connect(ws_url(server.url)) as ws:
        await ws.wait_closed()  # the server's deadline, not ours
        assert ws.close_code == 4401


async def test_websocket_upgrade_elsewhere_is_refused(server: RunningServer) -> None:
    with pytest.raises(Exception, match="404"):
        async with ws_connect(server.url.replace("http://", "ws://") + "/v1/nope"):
            pass
