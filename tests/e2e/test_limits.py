"""Flood protection: a message flood, relayed chat and signal, connections, guest tokens."""

from __future__ import annotations

import asyncio
import json

import httpx
from websockets.asyncio.client import connect as ws_connect

from pairline.client import Client
from tests.conftest import ServerFactory
from tests.e2e.rawws import guest_token, raw_session, ws_url
from tests.e2e.test_matching import confirmed_pair


async def test_a_message_flood_closes_the_connection_with_4429(
    start_server: ServerFactory,
) -> None:
    server = await start_server(PAIRLINE_MESSAGE_RATE_PER_S="5", PAIRLINE_MESSAGE_BURST="20")
    async with raw_session(server.url) as flooder, raw_session(server.url) as calm:
        for _ in range(50):
            await flooder.send({"type": "pong", "nonce": 1})
        assert await flooder.closed_code() == 4429
        # Others are served as before.
        await calm.send({"type": "join", "id": "j1"})
        assert (await calm.next("reply"))["ok"] is True


async def test_a_flooder_can_resume_its_session_afterwards(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_MESSAGE_RATE_PER_S="5", PAIRLINE_MESSAGE_BURST="20")
    token = await guest_token(server.url)
    async with raw_session(server.url, token) as flooder:
        await flooder.send({"type": "join", "id": "j1"})
        last_seq = (await flooder.next("reply"))["seq"]
        session = flooder.welcome["session"]
        for _ in range(50):
            await flooder.send({"type": "pong", "nonce": 1})
        assert await flooder.closed_code() == 4429
    async with ws_connect(ws_url(server.url)) as ws:
        hello = {"type": "hello", "v": 1, "token": token, "resume": session, "last_seq": last_seq}
        await ws.send(json.dumps(hello))
        welcome = json.loads(await ws.recv())
        assert welcome["session"] == session and welcome["state"]["status"] == "queued"


async def test_connections_per_address_are_capped(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_MAX_CONNECTIONS_PER_IP="3")
    sockets = [await ws_connect(ws_url(server.url)) for _ in range(3)]
    try:
        async with ws_connect(ws_url(server.url)) as fourth:
            await asyncio.wait_for(fourth.wait_closed(), 5)
            assert fourth.close_code == 4429
        await sockets[0].close()  # a slot frees up once a connection ends
        async with raw_session(server.url) as again:
            assert again.welcome["type"] == "welcome"
    finally:
        for ws in sockets:
            await ws.close()


async def test_guest_tokens_are_rate_limited_per_address(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_GUEST_TOKENS_PER_IP_PER_MIN="3")
    async with httpx.AsyncClient(base_url=server.url) as http:
        answers = [await http.post("/v1/auth/guest") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1


async def test_chat_and_signal_past_the_relay_budget_are_refused_and_the_call_goes_on(
    start_server: ServerFactory,
) -> None:
    server = await start_server(PAIRLINE_RELAY_RATE_PER_S="0.1", PAIRLINE_RELAY_BURST="3")
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        await confirmed_pair(ann, bob)
        for n in range(5):
            await ann.chat(f"message {n}")
        errors = [await ann.wait_for("error", timeout=5) for _ in range(2)]
        assert [e.raw["code"] for e in errors] == ["rate_limited"] * 2
        assert all(e.raw["retry_after_ms"] > 0 for e in errors)
        await ann.skip()  # the connection is still there; bob's events stay in order
        await bob.wait_for("partner_left", timeout=5)
        chats = [e.raw["text"] for e in bob.events_log if e.type == "chat"]
        assert chats == ["message 0", "message 1", "message 2"]
