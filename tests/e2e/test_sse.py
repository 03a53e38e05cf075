"""The SSE + HTTP fallback (protocol.md §1): the same sessions, acks, heartbeats, replay, resume
and limits as over WebSocket, with users of both transports in one queue."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect

from pairline.client import Client
from pairline.transport.sse import SseStream
from tests.conftest import ClientFactory, RunningServer, ServerFactory
from tests.e2e.rawws import guest_token, ws_url
from tests.e2e.sse_client import SseClient, StreamRefused

SseFactory = Callable[..., Awaitable[SseClient]]


@pytest.fixture
async def sse(server: RunningServer) -> AsyncIterator[SseFactory]:
    """Connected SSE clients of the default server, closed after the test."""
    clients: list[SseClient] = []

    async def make(name: str = "sse", url: str | None = None, **options: Any) -> SseClient:
        base = url or server.url
        client = SseClient(base, await guest_token(base, name), **options)
        clients.append(client)
        await client.connect()
        return client

    yield make
    for client in clients:
        await client.close()


async def status_of(client: SseClient) -> dict[str, Any]:
    response = await client.http.get(
        "/v1/status", headers={"Authorization": f"Bearer {client.token}"}
    )
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


async def sse_and_ws_in_a_call(
    sse: SseFactory, connect: ClientFactory
) -> tuple[SseClient, Client, str]:
    ann = await connect("ann")
    bob = await sse("bob")
    await ann.join()
    assert (await bob.command("join", "j1"))["ok"] is True
    confirmed = await bob.next("match_confirmed")
    await ann.wait_for("match_confirmed")
    return bob, ann, str(confirmed["match_id"])


# ---------------------------------------------------------------- the stream itself


async def test_the_stream_is_unbuffered_and_opens_with_a_welcome(
    server: RunningServer, sse: SseFactory
) -> None:
    bob = await sse("bob")
    assert bob.headers is not None
    assert bob.headers["content-type"] == "text/event-stream"
    assert bob.headers["cache-control"] == "no-cache, no-transform"
    assert bob.headers["x-accel-buffering"] == "no"
    assert bob.headers["connection"] == "keep-alive"
    assert "content-length" not in bob.headers

    first = bob.events[0]
    assert first.id is None and first.event == "message"  # the welcome: no id
    assert first.retry == 1000  # the browser's reconnect delay
    welcome = first.json()
    assert welcome["type"] == "welcome" and "seq" not in welcome
    assert welcome["session"] and welcome["last_seq"] == 0 and welcome["replayed"] == 0
    assert welcome["heartbeat_ms"] == 500
    assert welcome["state"]["status"] == "idle"

    ping = await bob.next("ping")  # heartbeats are events like any other: id = seq
    assert bob.events[-1].id == str(ping["seq"])
    async with httpx.AsyncClient(base_url=server.url) as http:
        spec = (await http.get("/openapi.json")).json()
    assert {"/v1/events", "/v1/commands"} <= set(spec["paths"])


async def test_an_idle_stream_gets_keep_alive_comments() -> None:
    """Proxies cut streams that stay silent: a comment line goes out when nothing else did."""
    stream = SseStream(keepalive_s=0.02)
    written: list[bytes] = []

    async def send(message: Any) -> None:
        written.append(message["body"])
        if len(written) == 2:
            stream.close(1000, "done")

    await stream.pump(send)
    assert written[:2] == [b": keep-alive\n\n", b": keep-alive\n\n"]
    assert written[2].startswith(b"event: close\ndata: ")
    assert written[-1] == b""


async def test_a_stream_without_a_valid_token_or_with_a_bad_last_event_id_is_refused(
    server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        for params in ({}, {"token": "nope"}):
            refused = await http.get("/v1/events", params=params)
            assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        token = await guest_token(server.url)
        bad = await http.get("/v1/events", params={"token": token}, headers={"Last-Event-ID": "x1"})
        assert bad.status_code == 400 and bad.json()["code"] == "bad_request"


# ---------------------------------------------------------------- SSE meets WebSocket


async def test_an_sse_user_and_a_websocket_user_match_chat_and_skip(
    sse: SseFactory, connect: ClientFactory
) -> None:
    ann = await connect("ann")  # WebSocket, through the SDK (which acks `matched` itself)
    bob = await sse("bob", auto_ack=False)
    await ann.join()
    reply = await bob.command("join", "j1")
    assert reply["ok"] is True

    matched = await bob.next("matched")
    assert matched["partner"]["user_id"] == ann.user_id
    assert bob.events[-1].id == str(matched["seq"])
    await ann.wait_for("matched")
    # Phase 1 waits for bob's ack, which only comes over POST.
    assert (await status_of(bob))["status"] == "proposed"
    assert (await bob.post({"type": "ack", "seq": matched["seq"]})).status_code == 202

    confirmed = await bob.next("match_confirmed")
    assert confirmed["match_id"] == matched["match_id"]
    assert confirmed["media"]["kind"] == "p2p"
    theirs = await ann.wait_for("match_confirmed")
    assert {confirmed["media"]["role"], theirs.raw["media"]["role"]} == {"offerer", "answerer"}
    bob.auto_ack = True

    await ann.chat("hi from the socket")
    assert (await bob.next("chat"))["text"] == "hi from the socket"
    chat = {"type": "chat", "match_id": confirmed["match_id"], "text": "hi from the stream"}
    assert (await bob.post(chat)).status_code == 202
    assert (await ann.wait_for("chat")).raw["text"] == "hi from the stream"

    skipped = await bob.command("skip", "s1", match_id=confirmed["match_id"])
    assert skipped["ok"] is True and skipped["requeued"] is True
    left = await ann.wait_for("partner_left", timeout=5)
    assert left.raw["reason"] == "skipped" and left.raw["requeued"] is True

    # Every numbered event's id is its seq; the seqs have no gaps.
    seqs = [int(e.id) for e in bob.events if e.id is not None]
    assert seqs == list(range(1, len(seqs) + 1))
    assert all(e.json()["seq"] == int(e.id) for e in bob.events if e.id is not None)


async def test_a_websocket_skip_reaches_the_sse_partner_at_once(
    sse: SseFactory, connect: ClientFactory
) -> None:
    bob, ann, match_id = await sse_and_ws_in_a_call(sse, connect)
    await ann.skip()
    left = await bob.next("partner_left")
    assert left["match_id"] == match_id and left["reason"] == "skipped"
    assert left["requeued"] is True


# ---------------------------------------------------------------- resume


async def test_a_dropped_stream_resumes_with_last_event_id_and_replays_in_order(
    sse: SseFactory, connect: ClientFactory
) -> None:
    bob, ann, match_id = await sse_and_ws_in_a_call(sse, connect)
    session = bob.session
    await bob.drop()
    assert (await ann.wait_for("partner_reconnecting")).raw["match_id"] == match_id
    # Nothing to post to while the stream is down: the client must reopen it first.
    away = await bob.post({"type": "chat", "match_id": match_id, "text": "lost"})
    assert away.status_code == 409 and away.json()["code"] == "invalid_state"
    for text in ("one", "two", "three"):
        await ann.chat(text)
    seen = int(bob.last_event_id or 0)

    welcome = await bob.reconnect()  # as a browser's EventSource does: Last-Event-ID only
    assert welcome["session"] == session
    assert welcome["replayed"] >= 3 and welcome["last_seq"] >= seen + 3
    assert welcome["state"]["status"] == "in_call"
    chats = [await bob.next("chat") for _ in range(3)]
    assert [c["text"] for c in chats] == ["one", "two", "three"]
    replayed = [int(e.id) for e in bob.events if e.id is not None]
    assert replayed == list(range(seen + 1, seen + 1 + len(replayed)))  # in order, no gaps
    assert (await ann.wait_for("partner_resumed")).raw["match_id"] == match_id

    # Naming the session works as well.
    await bob.drop()
    await ann.wait_for("partner_reconnecting")
    await ann.chat("four")
    again = await bob.connect(session=session, last_event_id=bob.last_event_id)
    assert again["session"] == session and again["replayed"] >= 1
    assert (await bob.next("chat"))["text"] == "four"
    await ann.wait_for("partner_resumed")
    back = {"type": "chat", "match_id": match_id, "text": "back"}
    assert (await bob.post(back)).status_code == 202
    assert (await ann.wait_for("chat")).raw["text"] == "back"


async def test_one_session_moves_between_the_transports(
    server: RunningServer, sse: SseFactory
) -> None:
    bob = await sse("bob")
    await bob.command("join", "j1")
    session = bob.session
    seen = int(bob.last_event_id or 0)
    await bob.drop()
    async with ws_connect(ws_url(server.url), compression=None) as ws:
        hello = {"type": "hello", "v": 1, "token": bob.token, "resume": session, "last_seq": seen}
        await ws.send(json.dumps(hello))
        welcome = json.loads(await ws.recv())
        assert welcome["session"] == session and welcome["state"]["status"] == "queued"
        last = welcome["last_seq"]
        # And back: the stream takes the session over from the socket.
        again = await bob.connect(session=session, last_event_id=last)
        assert again["session"] == session and again["state"]["status"] == "queued"
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4409
    answer = await bob.command("join", "j2")
    assert answer["type"] == "error" and answer["code"] == "invalid_state"  # still queued
    assert answer["seq"] > last


async def test_a_second_stream_of_the_user_takes_the_session_over(
    server: RunningServer,
) -> None:
    token = await guest_token(server.url, "two-tabs")
    async with SseClient(server.url, token) as first, SseClient(server.url, token) as second:
        assert second.session == first.session
        notice = await first.wait_ended()
        assert notice is not None and notice["code"] == 4409
        assert (await second.command("join", "j1"))["ok"] is True


# ---------------------------------------------------------------- heartbeats


async def test_an_sse_user_that_stops_answering_pings_is_found_stale(
    start_server: ServerFactory,
) -> None:
    server = await start_server()  # pings every 0.5 s: stale after 2 s of silence
    async with Client(server.url, display_name="ann") as ann:
        bob = SseClient(server.url, await guest_token(server.url, "bob"))
        try:
            await bob.connect()
            await ann.join()
            await bob.command("join", "j1")
            await bob.next("match_confirmed")
            bob.freeze()
            left = await ann.wait_for("partner_left", timeout=5)
            assert left.raw["reason"] == "timed_out" and left.raw["requeued"] is True
            notice = await bob.wait_ended()
            assert notice is not None and notice["code"] == 4408
        finally:
            await bob.close()


async def test_a_queued_sse_user_that_stops_answering_pings_is_removed(
    start_server: ServerFactory,
) -> None:
    server = await start_server()  # pings every 0.5 s: stale after 2 s of silence
    token = await guest_token(server.url, "ghost")
    async with SseClient(server.url, token) as ghost:
        session = ghost.session
        await ghost.command("join", "j1")
        ghost.freeze()
        gone = await ghost.next("queue_cancelled")
        assert gone["reason"] == "connection_timeout"
        notice = await ghost.wait_ended()
        assert notice is not None and notice["code"] == 4408
        welcome = await ghost.reconnect()  # a stale user that comes back: a fresh session
        assert welcome["session"] != session and welcome["replayed"] == 0
        assert welcome["state"]["status"] == "idle"


# ---------------------------------------------------------------- bad input


async def test_bad_posts_get_the_contract_errors_and_change_nothing(
    server: RunningServer, sse: SseFactory
) -> None:
    bob = await sse("bob")
    other = await guest_token(server.url, "other")
    session = bob.session
    assert session is not None
    unauthorized = [
        await bob.post({"type": "join", "id": "a"}, token=""),
        await bob.post({"type": "join", "id": "b"}, token="not-a-token"),
        await bob.post({"type": "join", "id": "c"}, session=""),
        await bob.post({"type": "join", "id": "d"}, session="s_not-mine"),
        await bob.post({"type": "join", "id": "e"}, token=other),  # bob's session, not theirs
    ]
    for response in unauthorized:
        assert response.status_code == 401, response.text
        assert response.json()["type"] == "error" and response.json()["code"] == "unauthorized"

    bad: list[tuple[dict[str, Any] | bytes | str, str]] = [
        (b"{nope", "bad_request"),
        (b"", "bad_request"),
        ("[1, 2]", "bad_request"),
        ({"type": "dance", "id": "f"}, "bad_request"),
        ({"type": "join"}, "bad_request"),  # no id
        ({"type": "join", "id": "g", "interests": "music"}, "bad_request"),
        ({"type": "hello", "v": 1, "token": bob.token}, "bad_request"),
        ({"type": "ack", "seq": 10_000}, "bad_request"),  # never sent
        ({"type": "chat", "match_id": "m_x", "text": "x" * 2001}, "too_large"),
        ("x" * 70_000, "too_large"),  # past the largest message
    ]
    for body, code in bad:
        response = await bob.post(body)
        assert response.status_code == 400, (body, response.text, bob.close_notice)
        error = response.json()
        assert error["type"] == "error" and error["code"] == code and error["message"]
    named = await bob.post({"type": "join", "id": "h", "interests": "music"})
    assert named.json()["re"] == "h"  # an error names the command when it can

    # Nothing happened: still idle, and nothing but pings came on the stream before the
    # answer to the next valid command.
    assert (await status_of(bob))["status"] == "idle"
    answer = await bob.command("leave", "after")
    assert answer["type"] == "error" and answer["code"] == "invalid_state"
    before = [e.json()["type"] for e in bob.events[1:] if e.json().get("re") != "after"]
    assert set(before) <= {"ping"}
    assert (await bob.command("join", "j1"))["ok"] is True


# ---------------------------------------------------------------- flood limits


async def test_a_post_flood_closes_the_stream_with_4429_and_the_session_resumes(
    start_server: ServerFactory,
) -> None:
    # A slow refill: one POST at a time must outrun it even on a busy machine.
    server = await start_server(PAIRLINE_MESSAGE_RATE_PER_S="1", PAIRLINE_MESSAGE_BURST="20")
    token = await guest_token(server.url, "flooder")
    async with (
        SseClient(server.url, token) as flooder,
        SseClient(server.url, await guest_token(server.url, "calm")) as calm,
    ):
        await flooder.command("join", "j1")
        session = flooder.session
        statuses: list[int] = []
        while not statuses or statuses[-1] == 202:
            assert len(statuses) < 100, "the budget never ran out"
            statuses.append((await flooder.post({"type": "pong", "nonce": 1})).status_code)
        # The POST that ran out of budget got 429 (unless the client's own answer to a ping
        # happened to be that one); those after it 409, as the stream is closing.
        assert statuses[-1] in (429, 409)
        assert 429 in statuses + flooder.background_statuses
        notice = await flooder.wait_ended()
        assert notice is not None and notice["code"] == 4429
        refused = await flooder.post({"type": "pong", "nonce": 1})
        assert refused.status_code == 409  # the stream is gone
        # Others are served as before, and the flooder may resume.
        assert (await calm.command("leave", "l1"))["code"] == "invalid_state"
        welcome = await flooder.reconnect()
        assert welcome["session"] == session and welcome["state"]["status"] == "queued"


async def test_streams_per_address_are_capped(start_server: ServerFactory) -> None:
    server = await start_server(PAIRLINE_MAX_CONNECTIONS_PER_IP="2")
    clients = [SseClient(server.url, await guest_token(server.url, f"u{i}")) for i in range(3)]
    try:
        ann, bob, cat = clients
        await ann.connect()
        await bob.connect()
        with pytest.raises(StreamRefused) as refused:
            await cat.connect()
        assert refused.value.status == 429 and refused.value.body["code"] == "rate_limited"
        # Two SSE users meet as any two do.
        await ann.command("join", "j1")
        await bob.command("join", "j1")
        confirmed = await asyncio.gather(ann.next("match_confirmed"), bob.next("match_confirmed"))
        assert confirmed[0]["match_id"] == confirmed[1]["match_id"]
        # A slot frees up once a stream ends (bob hearing of it proves the server saw it).
        await ann.drop()
        await bob.next("partner_reconnecting")
        assert (await cat.connect())["type"] == "welcome"
    finally:
        for client in clients:
            await client.close()


# ---------------------------------------------------------------- shutdown


async def test_a_stopping_server_says_farewell_on_the_stream_and_does_not_wait_for_it(
    start_server: ServerFactory,
) -> None:
    server = await start_server()
    token = await guest_token(server.url, "ann")
    async with SseClient(server.url, token) as ann:
        await ann.command("join", "j1")
        ann.auto_ack = False  # nothing to ack to once the server is gone
        assert await server.stop() in (0, -signal.SIGTERM)
        # The stream ended by itself: uvicorn did not have to wait out its grace time.
        assert "timeout graceful shutdown exceeded" not in server.log_text()
        notice = await ann.next("queue_cancelled")
        assert notice["reason"] == "shutdown"
        assert (await ann.wait_ended()) == {"code": 1012, "reason": "service restart"}
