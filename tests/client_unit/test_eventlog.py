import asyncio
from typing import Any

import pytest

from pairline.client.errors import ConnectionLost
from pairline.client.eventlog import EventLog
from pairline.client.events import Event, parse_event


def ev(type_: str, seq: int, **fields: Any) -> Event:
    return parse_event({"type": type_, "seq": seq, **fields})


def fed(*events: Event) -> EventLog:
    log = EventLog()
    for e in events:
        log.append(e)
    return log


async def test_returns_an_event_that_arrived_before_the_call() -> None:
    log = fed(
        ev("queue", 1, position=1, eta_ms=None),
        ev("matched", 2, match_id="m", partner={"user_id": "u"}),
    )
    got = await log.wait_for("matched", timeout_s=0.1)
    assert got.seq == 2
    assert log.cursor == 2


async def test_cursor_consumes_skipped_events() -> None:
    log = fed(ev("queue", 1), ev("chat", 2, match_id="m", text="a"), ev("queue", 3))
    assert (await log.wait_for("chat", timeout_s=0.1)).seq == 2
    # The queue event at seq 1 was skipped over, so it is consumed: the next one is seq 3.
    assert (await log.wait_for("queue", timeout_s=0.1)).seq == 3
    with pytest.raises(TimeoutError):
        await log.wait_for("queue", timeout_s=0.05)


async def test_same_event_is_not_returned_twice() -> None:
    log = fed(ev("ping", 1, nonce="a"), ev("ping", 2, nonce="b"))
    assert (await log.wait_for("ping", timeout_s=0.1)).seq == 1
    assert (await log.wait_for("ping", timeout_s=0.1)).seq == 2


async def test_waits_for_an_event_that_arrives_later() -> None:
    log = fed(ev("queue", 1))
    waiter = asyncio.create_task(log.wait_for(("chat", "partner_left"), timeout_s=2))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    log.append(ev("queue", 2))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    log.append(ev("partner_left", 3, match_id="m", reason="ended"))
    assert (await waiter).seq == 3
    assert log.cursor == 3


async def test_where_filters_and_leaves_non_matching_for_later_skipping() -> None:
    log = fed(ev("chat", 1, match_id="m", text="a"), ev("chat", 2, match_id="m", text="b"))
    got = await log.wait_for("chat", timeout_s=0.1, where=lambda e: e.raw["text"] == "b")
    assert got.seq == 2


async def test_timeout_message_lists_recent_events() -> None:
    log = fed(ev("queue", 1, position=4))
    with pytest.raises(TimeoutError) as info:
        await log.wait_for("matched", timeout_s=0.02)
    assert "matched" in str(info.value)
    assert "queue#1" in str(info.value)


async def test_finish_wakes_waiters_with_the_reason() -> None:
    log = fed()
    waiter = asyncio.create_task(log.wait_for("matched", timeout_s=2))
    await asyncio.sleep(0.01)
    log.finish(ConnectionLost(4409, "replaced"))
    with pytest.raises(ConnectionLost) as info:
        await waiter
    assert info.value.code == 4409


async def test_finished_log_still_returns_buffered_events() -> None:
    log = fed(ev("queue_cancelled", 1, reason="connection_timeout"))
    log.finish(ConnectionLost(4408))
    assert (await log.wait_for("queue_cancelled", timeout_s=0.1)).seq == 1


async def test_iterate_skips_command_answers_but_not_plain_errors() -> None:
    log = fed(
        ev("reply", 1, re="c1", ok=True),
        ev("error", 2, re="c2", code="invalid_state"),
        ev("error", 3, code="bad_request"),
        ev("queue", 4),
    )
    log.finish(None)
    seen = [e.seq async for e in log.iterate()]
    assert seen == [3, 4]


async def test_iterate_raises_the_loss_after_draining() -> None:
    log = fed(ev("queue", 1))
    seen: list[int] = []

    async def consume() -> None:
        async for e in log.iterate():
            seen.append(e.seq)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    log.append(ev("queue", 2))
    log.finish(ConnectionLost(None, "gave up"))
    with pytest.raises(ConnectionLost):
        await task
    assert seen == [1, 2]


async def test_iterate_is_independent_of_the_cursor() -> None:
    log = fed(ev("queue", 1), ev("queue", 2))
    await log.wait_for("queue", timeout_s=0.1)
    log.finish(None)
    assert [e.seq async for e in log.iterate()] == [1, 2]
