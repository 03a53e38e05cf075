"""Client message handling, fed messages directly: no server, no socket."""

import asyncio
from typing import Any

import pytest

from pairline.client import Client, CommandError, Matched
from pairline.client.connection import Connection


class FakeConn:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


def make(**options: Any) -> tuple[Client, FakeConn, Connection]:
    client = Client("http://127.0.0.1:1", token="t", **options)
    fake = FakeConn()
    conn: Connection = fake  # type: ignore[assignment]
    client._conn = conn  # commands go to the fake too
    return client, fake, conn


MATCHED = {"type": "matched", "match_id": "m1", "partner": {"user_id": "u2"}, "ack_within_ms": 5000}


async def feed(client: Client, conn: Connection, *messages: dict[str, Any]) -> None:
    for m in messages:
        await client._handle(conn, m)


async def test_ping_gets_pong_then_ack() -> None:
    c, fake, conn = make()
    await feed(c, conn, {"type": "ping", "seq": 1, "nonce": "n1"})
    assert fake.sent == [{"type": "pong", "nonce": "n1"}, {"type": "ack", "seq": 1}]
    assert c.last_seq == 1


async def test_ack_matched_false_freezes_acks_at_the_match() -> None:
    c, fake, conn = make(ack_matched=False)
    await feed(
        c,
        conn,
        {"type": "queue", "seq": 1, "position": 1, "eta_ms": None},
        {**MATCHED, "seq": 2},
        {"type": "queue", "seq": 3, "position": 1, "eta_ms": 0},
    )
    assert [m for m in fake.sent if m["type"] == "ack"] == [{"type": "ack", "seq": 1}]
    assert c.last_seq == 3


async def test_silent_client_sends_nothing() -> None:
    c, fake, conn = make(answer_pings=False)
    await feed(c, conn, {"type": "ping", "seq": 1, "nonce": "n"}, {**MATCHED, "seq": 2})
    assert fake.sent == []
    assert c.last_seq == 2


async def test_duplicate_seqs_are_dropped() -> None:
    c, _, conn = make()
    chat = {"type": "chat", "seq": 1, "match_id": "m", "text": "hi"}
    await feed(c, conn, chat, chat, {**chat, "seq": 2})
    assert [e.seq for e in c.events_log] == [1, 2]


async def test_unknown_type_is_logged_and_acked() -> None:
    c, fake, conn = make()
    await feed(c, conn, {"type": "from_the_future", "seq": 1})
    assert c.events_log[0].type == "from_the_future"
    assert fake.sent == [{"type": "ack", "seq": 1}]


async def test_command_reply_and_error() -> None:
    c, fake, conn = make()
    join = asyncio.create_task(c.join(interests=["go"], lang="en", id="j1"))
    bad = asyncio.create_task(c.command("skip", id="s1", match_id="nope"))
    await asyncio.sleep(0)
    assert {"type": "join", "id": "j1", "interests": ["go"], "lang": "en"} in fake.sent
    await feed(
        c,
        conn,
        {"type": "reply", "seq": 1, "re": "j1", "ok": True, "position": 2, "eta_ms": 10},
        {"type": "error", "seq": 2, "re": "s1", "code": "not_found", "message": "no"},
    )
    assert await join == {"ok": True, "position": 2, "eta_ms": 10}
    assert c.state["status"] == "queued"
    with pytest.raises(CommandError) as info:
        await bad
    assert info.value.code == "not_found"
    # Answers are in the log (for invariant checks) but not in the event stream.
    assert [e.type for e in c.events_log] == ["reply", "error"]


async def test_command_timeout_forgets_the_command() -> None:
    c, _, conn = make()
    with pytest.raises(TimeoutError):
        await c.command("leave", id="l1", timeout=0.02)
    # A late answer is logged and otherwise ignored.
    await feed(c, conn, {"type": "reply", "seq": 1, "re": "l1", "ok": True})
    assert c.events_log[-1].type == "reply"


async def test_wait_for_sees_fed_messages_typed() -> None:
    c, _, conn = make()
    await feed(
        c, conn, {"type": "queue", "seq": 1, "position": 1, "eta_ms": None}, {**MATCHED, "seq": 2}
    )
    got = await c.wait_for(Matched, timeout=0.1)
    assert got.match_id == "m1"
    assert c.match_id == "m1"
    with pytest.raises(TimeoutError):
        await c.wait_for("queue", timeout=0.02)  # consumed when matched was returned


async def test_late_skip_names_the_match_that_just_ended() -> None:
    c, fake, conn = make()
    await feed(
        c,
        conn,
        {**MATCHED, "seq": 1},
        {
            "type": "partner_left",
            "seq": 2,
            "match_id": "m1",
            "reason": "skipped",
            "requeued": True,
            "position": 1,
        },
    )
    assert c.match_id is None
    task = asyncio.create_task(c.skip(id="k"))
    await asyncio.sleep(0)
    assert fake.sent[-1] == {"type": "skip", "id": "k", "match_id": "m1"}
    task.cancel()


async def test_generated_ids_are_unique_per_client() -> None:
    a, fa, _ = make()
    b, fb, _ = make()
    tasks = [asyncio.create_task(x.leave(timeout=0.05)) for x in (a, a, b)]
    await asyncio.sleep(0)
    ids = [m["id"] for m in fa.sent + fb.sent]
    assert len(set(ids)) == 3
    for t in tasks:
        t.cancel()
