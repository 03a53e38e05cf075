from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import structlog
from sqlalchemy import pool
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from pairline.records import (
    Drainer,
    Outbox,
    Record,
    Records,
    ReportFiled,
    UserSeen,
    async_url,
    make_engine,
    migrate,
)
from tests.records import outbox_child
from tests.records.netutil import TcpProxy, free_port

CHILD = Path(outbox_child.__file__)


def quick_drainer(outbox: Outbox, records: Records) -> Drainer:
    """A drainer that retries within tenths of a second."""
    return Drainer(outbox, records, min_backoff_s=0.02, max_backoff_s=0.2)


def reports(count: int, start: int = 0) -> list[Record]:
    return [
        ReportFiled(f"k{i:05}", "a", "b", None, "spam", f"d{i}", 1000 + i)
        for i in range(start, start + count)
    ]


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    box = await Outbox.open(tmp_path / "outbox.db")
    yield box
    await box.close()


class SpyRecords(Records):
    """Records that remember the batches written to them."""

    def __init__(self, records: Records) -> None:
        super().__init__(records.engine)
        self.batches: list[list[Record]] = []

    async def write(self, batch: Sequence[Record]) -> None:
        await super().write(batch)
        self.batches.append(list(batch))


async def stored_keys(records: Records) -> list[str]:
    """Report keys in the database, oldest id first."""
    found: list[str] = []
    before: int | None = None
    while page := await records.list_reports(limit=500, before_id=before):
        found.extend(r["report_key"] for r in page)
        before = page[-1]["id"]
    return found[::-1]


def keys(batch: Sequence[Record]) -> list[str]:
    return [r.report_key for r in batch if isinstance(r, ReportFiled)]


# --- the outbox -------------------------------------------------------------------------


async def test_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "outbox.db"
    first, second = reports(3), [UserSeen("u", "U", "operator", 5)]
    box = Outbox(path)
    await box.append(first)
    await box.append(second)
    await box.append([])
    assert len(box) == 4
    assert await box.size() == 4
    await box.close()

    box = await Outbox.open(path)
    try:
        assert len(box) == 4
        found = await box.peek(10)
        assert [record for _, record in found] == first + second
        ids = [row_id for row_id, _ in found]
        assert ids == sorted(ids)
        assert [r for _, r in await box.peek(2)] == first[:2]

        await box.remove(ids[1])
        assert len(box) == 2
        assert [r for _, r in await box.peek(10)] == first[2:] + second
        await box.remove(ids[-1])
        assert len(box) == 0
        assert await box.size() == 0
        await asyncio.wait_for(box.wait_empty(), 1)
    finally:
        await box.close()
    with pytest.raises(RuntimeError, match="closed"):
        await box.append(first)


async def test_killed_right_after_append_returned(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    child = await asyncio.create_subprocess_exec(sys.executable, str(CHILD), str(path), "once")
    assert await asyncio.wait_for(child.wait(), 30) == -signal.SIGKILL
    box = await Outbox.open(path)
    try:
        assert [r for _, r in await box.peek(100)] == outbox_child.batch(0)
    finally:
        await box.close()


async def test_killed_while_appending_keeps_every_append_that_returned(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), str(path), "loop", stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    confirmed = -1
    try:
        while confirmed < 40:
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            assert line, "the child stopped appending"
            confirmed = int(line)
    finally:
        child.kill()  # SIGKILL, most likely in the middle of a commit
    assert await asyncio.wait_for(child.wait(), 30) == -signal.SIGKILL
    for line in (await child.stdout.read()).split():  # confirmed before the kill landed
        confirmed = max(confirmed, int(line))

    box = await Outbox.open(path)
    try:
        found = [record for _, record in await box.peek(100_000)]
    finally:
        await box.close()
    size = outbox_child.BATCH
    assert len(found) % size == 0, "a batch was stored in part"
    batches = len(found) // size
    assert batches > confirmed, f"{batches} batches stored, {confirmed + 1} confirmed"
    assert found == [record for n in range(batches) for record in outbox_child.batch(n)]


async def test_concurrent_appends_share_commits(outbox: Outbox) -> None:
    await asyncio.gather(*(outbox.append(reports(1, start=i)) for i in range(300)))
    assert len(outbox) == await outbox.size() == 300  # each returned once it was durable
    assert outbox.commits <= 3


async def test_appends_during_a_commit_go_in_the_next(outbox: Outbox) -> None:
    async def producer(n: int) -> None:
        for i in range(20):
            await outbox.append(reports(1, start=n * 1000 + i))

    await asyncio.gather(*(producer(n) for n in range(20)))
    assert await outbox.size() == 400
    # Producers wait for their commit, then append again: each wave of 20 shares one.
    assert outbox.commits <= 400 // 5, outbox.commits
    stored = [r for _, r in await outbox.peek(1000)]
    for n in range(20):  # each producer's own appends in its order
        mine = [k for k in keys(stored) if int(k[1:]) // 1000 == n]
        assert mine == sorted(mine) and len(mine) == 20


# --- the drainer ------------------------------------------------------------------------


async def test_drainer_moves_everything_in_order(outbox: Outbox, records: Records) -> None:
    spy = SpyRecords(records)
    drainer = Drainer(outbox, spy)
    assert drainer.backlog == 0
    drainer.start()
    with pytest.raises(RuntimeError, match="already running"):
        drainer.start()
    try:
        appended: list[Record] = []
        for chunk in range(6):
            batch = reports(250, start=chunk * 250)
            await outbox.append(batch)
            appended.extend(batch)
        await asyncio.wait_for(drainer.drained(), 30)
    finally:
        await drainer.stop()
    assert (drainer.written, drainer.failures, drainer.backlog) == (1500, 0, 0)
    assert max(len(batch) for batch in spy.batches) <= 500
    assert [r for batch in spy.batches for r in batch] == appended
    assert await stored_keys(records) == keys(appended)  # ids in outbox order


async def test_drainer_takes_over_what_a_crash_left(tmp_path: Path, records: Records) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    await box.append(reports(700))
    await box.close()  # the process is gone before the drainer ran

    box = await Outbox.open(path)
    drainer = Drainer(box, records)
    drainer.start()
    try:
        await asyncio.wait_for(drainer.drained(), 30)
        assert await stored_keys(records) == keys(reports(700))
        # And it goes on with new appends, woken by them.
        await box.append(reports(5, start=700))
        await asyncio.wait_for(drainer.drained(), 30)
        assert len(await stored_keys(records)) == 705
    finally:
        await drainer.stop()
        await box.close()


async def test_stop_drains_what_is_left(outbox: Outbox, records: Records) -> None:
    drainer = Drainer(outbox, records)
    drainer.start()
    await outbox.append(reports(50))
    await drainer.stop()
    assert len(outbox) == 0
    assert len(await stored_keys(records)) == 50
    await drainer.stop()  # stopped already: nothing to do


async def test_unreachable_database_then_another_that_works(
    outbox: Outbox, records: Records
) -> None:
    dead = Records(make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"))
    drainer = quick_drainer(outbox, dead)
    drainer.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await outbox.append(reports(30))
        assert loop.time() - started < 0.5  # durable locally; the database is not waited for
        await asyncio.wait_for(drainer.until(lambda d: d.failures >= 3), 10)
        assert (len(outbox), drainer.backlog, drainer.written) == (30, 30, 0)
        await outbox.append(reports(10, start=30))

        drainer.records = records  # the next attempt goes here
        await asyncio.wait_for(drainer.drained(), 10)
        assert await stored_keys(records) == keys(reports(40))
        assert drainer.written == 40
    finally:
        await drainer.stop()
        await dead.engine.dispose()


async def test_a_hanging_database_never_holds_up_append(outbox: Outbox, tmp_path: Path) -> None:
    silent = TcpProxy("127.0.0.1", 0, silent=True)  # accepts, then never says a word
    await silent.start()
    url = async_url(f"postgresql://postgres@127.0.0.1:{silent.port}/nothing")
    hung = Records(create_async_engine(url, connect_args={"timeout": 2}, poolclass=pool.NullPool))
    drainer = quick_drainer(outbox, hung)
    drainer.start()
    try:
        await outbox.append(reports(1))  # the drainer is now stuck connecting
        loop = asyncio.get_running_loop()
        for i in range(20):
            started = loop.time()
            await outbox.append(reports(1, start=1 + i))
            assert loop.time() - started < 0.5
        assert drainer.written == 0
        assert len(outbox) == 21
    finally:
        await drainer.stop(timeout=0.2)  # gives up the stuck attempt; the rows stay
        await hung.engine.dispose()
        await silent.stop()
    assert len(outbox) == await outbox.size() == 21


async def test_database_goes_away_and_comes_back(outbox: Outbox, postgresql_url: str) -> None:
    await migrate.upgrade(postgresql_url)
    real = make_url(postgresql_url)
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.start()
    engine = make_engine(real.set(host="127.0.0.1", port=proxy.port).render_as_string(False))
    drainer = quick_drainer(outbox, Records(engine))
    drainer.start()
    direct = Records(make_engine(postgresql_url))
    try:
        await outbox.append(reports(10))
        await asyncio.wait_for(drainer.drained(), 10)
        assert len(await stored_keys(direct)) == 10

        await proxy.stop()  # the database goes away, its connections cut
        await outbox.append(reports(20, start=10))
        await asyncio.wait_for(drainer.until(lambda d: d.failures >= 2), 10)
        assert drainer.backlog == 20
        assert len(await stored_keys(direct)) == 10

        await proxy.start()  # and comes back on the same address
        await asyncio.wait_for(drainer.drained(), 10)
        assert await stored_keys(direct) == keys(reports(30))
    finally:
        await drainer.stop()
        await engine.dispose()
        await direct.engine.dispose()
        await proxy.stop()


async def test_stop_gives_up_in_time_and_keeps_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    dead = Records(make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"))
    drainer = Drainer(box, dead, min_backoff_s=5, max_backoff_s=5)
    drainer.start()
    await box.append(reports(15))
    await asyncio.wait_for(drainer.until(lambda d: d.failures >= 1), 10)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await drainer.stop(timeout=0.3)  # would otherwise wait 5 s before its next attempt
    assert loop.time() - started < 2
    await dead.engine.dispose()
    await box.close()

    box = await Outbox.open(path)
    try:
        assert len(box) == 15
    finally:
        await box.close()


async def test_retries_back_off_up_to_the_cap_and_are_logged(outbox: Outbox) -> None:
    dead = Records(make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"))
    drainer = Drainer(outbox, dead, min_backoff_s=0.01, max_backoff_s=0.04)
    with structlog.testing.capture_logs() as logs:
        drainer.start()
        try:
            await outbox.append(reports(3))
            await asyncio.wait_for(drainer.until(lambda d: d.failures >= 5), 10)
        finally:
            await drainer.stop(timeout=0.1)
            await dead.engine.dispose()
    failed = [entry for entry in logs if entry["event"] == "records_write_failed"]
    assert [entry["retry_in_s"] for entry in failed[:5]] == [0.01, 0.02, 0.04, 0.04, 0.04]
    assert all(entry["log_level"] == "warning" and entry["backlog"] == 3 for entry in failed)
    assert "ConnectionRefusedError" in failed[0]["error"]
    assert len(outbox) == 3
