from __future__ import annotations

import random
from typing import Any

from sqlalchemy import delete, select

from pairline.records import (
    BlockAdded,
    BlockRemoved,
    CallConfirmed,
    CallEnded,
    Record,
    Records,
    ReportFiled,
    SkipPenaltySet,
    UserSeen,
)
from pairline.records.models import Base


async def rows(records: Records) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows, in key order; report ids left out (a sequence may skip numbers)."""
    found: dict[str, list[dict[str, Any]]] = {}
    async with records.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            key = [c for c in table.primary_key.columns if c.name != "id"] or [table.c.report_key]
            query = select(*[c for c in table.columns if c.name != "id"]).order_by(*key)
            if table.name == "reports":
                query = query.order_by(None).order_by(table.c.report_key)
            found[table.name] = [dict(row._mapping) for row in await connection.execute(query)]
    return found


async def wipe(records: Records) -> None:
    async with records.engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            await connection.execute(delete(table))


# --- write: idempotence ---------------------------------------------------------------

BATCH: list[Record] = [
    UserSeen("a", "Ann", "guest", 100),
    UserSeen("b", "Bob", "guest", 101),
    CallConfirmed("m1", ("a", "b"), "room-1", 200, 210),
    SkipPenaltySet("a", [300], 0, 0, 300),
    CallEnded("m1", ("a", "b"), 300, "skipped", "a"),
    BlockAdded("b", "a", "m1", 310),
    ReportFiled("r1", "b", "a", "m1", "abuse", "rude", 311),
    UserSeen("a", "Ann 2", "guest", 400),
]


async def test_same_batch_twice_and_every_prefix_again(records: Records) -> None:
    await records.write(BATCH)
    once = await rows(records)
    await records.write(BATCH)
    assert await rows(records) == once
    for end in range(len(BATCH) + 1):
        await records.write(BATCH[:end])
        assert await rows(records) == once, f"prefix of {end}"
    assert once["users"] == [
        {
            "user_id": "a",
            "display_name": "Ann 2",
            "kind": "guest",
            "first_seen_at": 100,
            "last_seen_at": 400,
        },
        {
            "user_id": "b",
            "display_name": "Bob",
            "kind": "guest",
            "first_seen_at": 101,
            "last_seen_at": 101,
        },
    ]


async def test_empty_batch(records: Records) -> None:
    await records.write([])
    assert all(not found for found in (await rows(records)).values())


async def test_call_ended_before_confirmed_makes_one_complete_row(records: Records) -> None:
    await records.write([CallEnded("m1", ("a", "b"), 900, "disconnected", None)])
    assert await records.open_calls() == []  # ended, even before it is known to have begun
    await records.write([CallConfirmed("m1", ("a", "b"), "room", 100, 120)])
    expected = {
        "match_id": "m1",
        "user_a": "a",
        "user_b": "b",
        "media_room": "room",
        "proposed_at": 100,
        "confirmed_at": 120,
        "ended_at": 900,
        "end_reason": "disconnected",
        "ended_by": None,
    }
    assert await records.call("m1") == expected
    # Both again, either order, in one batch: still that row.
    await records.write(
        [
            CallConfirmed("m1", ("a", "b"), "room", 100, 120),
            CallEnded("m1", ("a", "b"), 900, "disconnected", None),
        ]
    )
    assert await records.call("m1") == expected


async def test_first_end_stands(records: Records) -> None:
    await records.write(
        [
            CallConfirmed("m1", ("a", "b"), None, 100, 120),
            CallEnded("m1", ("a", "b"), 500, "skipped", "b"),
            CallEnded("m1", ("a", "b"), 600, "ended", "a"),
        ]
    )
    call = await records.call("m1")
    assert call is not None
    assert (call["ended_at"], call["end_reason"], call["ended_by"]) == (500, "skipped", "b")


async def test_duplicated_report_is_stored_once(records: Records) -> None:
    report = ReportFiled("key-1", "a", "b", "m1", "abuse", "details", 100)
    await records.write([report, report])
    await records.write([report])
    found = await records.list_reports()
    assert len(found) == 1
    assert found[0]["report_key"] == "key-1"
    assert found[0]["details"] == "details"
    assert isinstance(found[0]["id"], int)


async def test_failed_batch_writes_nothing(records: Records) -> None:
    bad = ReportFiled("k", "a", "b", None, "spam", None, 5)  # type: ignore[arg-type]
    try:
        await records.write([UserSeen("a", "Ann", "guest", 1), bad])
    except Exception:
        pass
    else:
        raise AssertionError("a report without details was stored")
    assert (await rows(records))["users"] == []


async def test_skip_penalty_keeps_the_latest_state(records: Records) -> None:
    newer = SkipPenaltySet("a", [10, 20], 1, 9000, 20)
    await records.write([SkipPenaltySet("a", [10], 0, 0, 10), newer])
    await records.write([SkipPenaltySet("a", [10], 0, 0, 10)])  # late, older: ignored
    assert await records.skip_penalties(now=0) == {"a": ([10, 20], 1, 9000)}


# --- write: at-least-once delivery, at random -------------------------------------------


def scenario(rng: random.Random) -> list[Record]:
    """Records as a server would make them, over few users so that they collide."""
    users = [f"u{i}" for i in range(4)]
    made: list[Record] = []
    at = 1000
    calls: dict[str, tuple[str, str]] = {}
    pending_ends: list[str] = []
    for _ in range(rng.randint(5, 40)):
        at += rng.randint(1, 50)
        a, b = rng.sample(users, 2)
        match rng.randrange(7):
            case 0:
                made.append(UserSeen(a, rng.choice(["x", "y", "z"]), "guest", at))
            case 1:
                match_id = f"m{len(calls)}"
                calls[match_id] = (a, b)
                made.append(CallConfirmed(match_id, (a, b), rng.choice([None, "r"]), at - 5, at))
                pending_ends.append(match_id)
            case 2 if pending_ends:
                match_id = pending_ends.pop(rng.randrange(len(pending_ends)))
                reason = rng.choice(["skipped", "ended", "timed_out"])
                made.append(CallEnded(match_id, calls[match_id], at, reason, a))
            case 3:
                made.append(BlockAdded(a, b, None, at))
            case 4:
                made.append(BlockRemoved(a, b, at))
            case 5:
                key = f"r{rng.randrange(8)}"
                made.append(ReportFiled(key, a, b, None, "spam", key, at))
            case _:
                made.append(SkipPenaltySet(a, [at], rng.randrange(3), at + 100, at))
    # A call's end may be known before its confirmation (see `Records.write`).
    if len(made) > 1 and rng.random() < 0.3:
        i = rng.randrange(len(made) - 1)
        made[i], made[i + 1] = made[i + 1], made[i]
    return made


async def deliver_at_least_once(
    records: Records, sequence: list[Record], rng: random.Random
) -> None:
    """As the drainer does through crashes: batches in order, some written again."""
    start = 0
    while start < len(sequence):
        end = rng.randint(start + 1, min(len(sequence), start + 8))
        await records.write(sequence[start:end])
        if rng.random() < 0.3:
            continue  # "crashed" before removing the batch: it comes again, maybe longer
        start = end
    await records.write(sequence[: rng.randint(0, len(sequence))])  # an old prefix, again


async def test_repeated_delivery_changes_nothing(records: Records) -> None:
    rng = random.Random(20251122)
    for _ in range(25):
        sequence = scenario(rng)
        await wipe(records)
        await records.write(sequence)
        once = await rows(records)
        await wipe(records)
        await deliver_at_least_once(records, sequence, rng)
        assert await rows(records) == once, sequence


# --- blocks -----------------------------------------------------------------------------


async def test_blocks(records: Records) -> None:
    await records.write(
        [
            BlockAdded("a", "b", "m1", 100),
            BlockAdded("a", "c", None, 50),
            BlockAdded("c", "d", "m2", 70),
            BlockAdded("a", "b", "m9", 200),  # already blocked: the first block stands
        ]
    )
    assert await records.blocks_of("a") == [("c", 50), ("b", 100)]
    assert await records.blocks_of("b") == []
    assert sorted(await records.all_blocks()) == [("a", "b"), ("a", "c"), ("c", "d")]
    assert await records.is_blocked("a", "b")
    assert await records.is_blocked("b", "a")  # either way
    assert not await records.is_blocked("b", "c")


async def test_removed_block_stays_removed_until_blocked_again(records: Records) -> None:
    added = BlockAdded("a", "b", "m1", 100)
    await records.write([added, BlockRemoved("a", "b", 150)])
    assert not await records.is_blocked("a", "b")
    assert await records.all_blocks() == []
    await records.write([added])  # a late copy cannot bring it back
    assert not await records.is_blocked("a", "b")
    await records.write([BlockAdded("a", "b", "m5", 300)])  # a new block does
    assert await records.blocks_of("a") == [("b", 300)]


async def test_removal_before_its_block_arrives(records: Records) -> None:
    await records.write([BlockRemoved("a", "b", 150)])
    await records.write([BlockAdded("a", "b", None, 100)])
    assert not await records.is_blocked("a", "b")


# --- reports ----------------------------------------------------------------------------


async def test_report_filters_and_pages(records: Records) -> None:
    batch: list[Record] = [
        ReportFiled(
            f"k{i}",
            reporter=f"r{i % 3}",
            reported=f"t{i % 2}",
            match_id=f"m{i}",
            reason="spam" if i % 4 == 0 else "abuse",
            details=f"d{i}",
            at=1000 + i,
        )
        for i in range(20)
    ]
    await records.write(batch)

    everything = await records.list_reports(limit=100)
    assert [r["report_key"] for r in everything] == [f"k{i}" for i in reversed(range(20))]
    ids = [r["id"] for r in everything]
    assert ids == sorted(ids, reverse=True)
    first = everything[-1]
    assert first | {"id": 0} == {
        "id": 0,
        "report_key": "k0",
        "reporter": "r0",
        "reported": "t0",
        "match_id": "m0",
        "reason": "spam",
        "details": "d0",
        "created_at": 1000,
    }

    def keys(found: list[dict[str, Any]]) -> list[int]:
        return [int(r["report_key"][1:]) for r in found]

    assert keys(await records.list_reports(reported="t1")) == [19, 17, 15, 13, 11, 9, 7, 5, 3, 1]
    assert keys(await records.list_reports(reporter="r2")) == [17, 14, 11, 8, 5, 2]
    assert keys(await records.list_reports(reason="spam")) == [16, 12, 8, 4, 0]
    assert keys(await records.list_reports(since=1015)) == [19, 18, 17, 16, 15]
    assert keys(await records.list_reports(until=1003)) == [2, 1, 0]
    assert keys(await records.list_reports(since=1005, until=1008)) == [7, 6, 5]
    assert keys(await records.list_reports(reported="t0", reason="spam", since=1004)) == [
        16,
        12,
        8,
        4,
    ]
    assert await records.list_reports(reported="nobody") == []

    # Keyset pages: each starts below the last id of the one before.
    pages: list[list[int]] = []
    before: int | None = None
    while True:
        page = await records.list_reports(reported="t0", limit=3, before_id=before)
        if not page:
            break
        pages.append(keys(page))
        before = page[-1]["id"]
    assert pages == [[18, 16, 14], [12, 10, 8], [6, 4, 2], [0]]
    assert len(await records.list_reports(limit=10_000)) == 20  # capped, not refused


# --- bans -------------------------------------------------------------------------------


async def test_bans(records: Records) -> None:
    await records.ban("a", "abuse", None, "op1", at=100)
    await records.ban("b", "spam", 5000, "op1", at=100)
    await records.ban("c", "spam", 2000, "op2", at=100)
    assert await records.active_bans(now=1000) == {"a": None, "b": 5000, "c": 2000}
    assert await records.active_bans(now=3000) == {"a": None, "b": 5000}
    assert await records.ban_of("b", now=3000) == ("spam", 5000)
    assert await records.ban_of("c", now=3000) is None  # over
    assert await records.ban_of("nobody", now=3000) is None

    await records.ban("b", "abuse", None, "op2", at=200)  # replaces
    assert await records.ban_of("b", now=10_000) == ("abuse", None)

    assert await records.unban("a")
    assert not await records.unban("a")
    assert await records.ban_of("a", now=1000) is None
    assert await records.active_bans(now=10_000) == {"b": None}


# --- skip penalties ---------------------------------------------------------------------


async def test_skip_penalties(records: Records) -> None:
    await records.write(
        [
            SkipPenaltySet("cooling", [], 1, 5000, 10),
            SkipPenaltySet("skipping", [100, 200], 0, 0, 10),
            SkipPenaltySet("escalated", [], 2, 900, 10),
            SkipPenaltySet("blank", [], 0, 900, 10),
        ]
    )
    assert await records.skip_penalties(now=1000) == {
        "cooling": ([], 1, 5000),
        "skipping": ([100, 200], 0, 0),
        "escalated": ([], 2, 900),
    }
    assert (await records.skip_penalties(now=500))["blank"] == ([], 0, 900)


# --- calls ------------------------------------------------------------------------------


async def test_calls(records: Records) -> None:
    await records.write(
        [
            CallConfirmed("m1", ("a", "b"), "room-1", 100, 110),
            CallConfirmed("m2", ("c", "d"), None, 100, 110),
            CallConfirmed("m3", ("e", "f"), None, 100, 110),
            CallConfirmed("m4", ("g", "h"), None, 100, 110),
            CallEnded("m2", ("c", "d"), 500, "ended", "c"),
        ]
    )
    assert await records.call("m1") == {
        "match_id": "m1",
        "user_a": "a",
        "user_b": "b",
        "media_room": "room-1",
        "proposed_at": 100,
        "confirmed_at": 110,
        "ended_at": None,
        "end_reason": None,
        "ended_by": None,
    }
    assert await records.call("nope") is None
    assert await records.open_calls() == ["m1", "m3", "m4"]

    # Start-up after a crash: the calls still running elsewhere are kept.
    assert await records.close_open_calls("server_restart", 900, keep={"m3", "gone"}) == 2
    assert await records.open_calls() == ["m3"]
    m1 = await records.call("m1")
    assert m1 is not None
    assert (m1["ended_at"], m1["end_reason"], m1["ended_by"]) == (900, "server_restart", None)
    m2 = await records.call("m2")
    assert m2 is not None
    assert (m2["ended_at"], m2["end_reason"]) == (500, "ended")  # already over: untouched

    assert await records.close_open_calls("server_restart", 950) == 1
    assert await records.open_calls() == []
    assert await records.close_open_calls("server_restart", 990) == 0

    # The end the crash kept in the outbox arrives after all: it replaces the guess.
    await records.write([CallEnded("m1", ("a", "b"), 800, "skipped", "b")])
    m1 = await records.call("m1")
    assert m1 is not None
    assert (m1["ended_at"], m1["end_reason"], m1["ended_by"]) == (800, "skipped", "b")


async def test_close_many_open_calls_with_keep(records: Records) -> None:
    await records.write([CallConfirmed(f"m{i:04}", ("a", "b"), None, 1, 2) for i in range(1200)])
    keep = [f"m{i:04}" for i in range(0, 1200, 7)]
    assert await records.close_open_calls("server_restart", 10, keep=keep) == 1200 - len(keep)
    assert await records.open_calls() == keep
