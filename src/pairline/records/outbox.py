"""The outbox: records are durable on local disk before anyone is told, then drained to SQL.

`Outbox.append` returns once its records are fsynced to a local SQLite file, which takes
milliseconds whatever the database is doing; the `Drainer` then writes them to `Records` in
order, and removes them only once that transaction committed. Delivery is at least once (a
crash between commit and removal repeats a batch), which `Records.write` makes harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import structlog

from pairline.records.events import Record, from_json, to_json
from pairline.records.repository import Records

log = structlog.get_logger("pairline.records")

T = TypeVar("T")

MAX_BATCH = 500  # records per database transaction
MIN_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0
STOP_TIMEOUT_S = 5.0
# After a batch, records gather this long before the next: under load one database
# transaction carries many (they are safe in the outbox meanwhile).
LINGER_S = 0.05
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # truncate the WAL back to this after a large backlog

_Pending = tuple[list[bytes], "asyncio.Future[None]"]


class Outbox:
    """A local SQLite file of records not yet in the database. One process owns it.

    All SQLite work runs in one dedicated thread, so the event loop never waits on the disk.
    Appends made while a commit is under way are committed together by the next one (group
    commit): one fsync serves them all.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open (or create) the file, keeping whatever a crashed process left in it.

        This waits for the file to open; inside an event loop, prefer `await Outbox.open()`."""
        self.path = Path(path)
        self.commits = 0  # transactions that appended records: appends ÷ commits = batching
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pairline-outbox")
        self._db: sqlite3.Connection | None = None
        self._pending: list[_Pending] = []
        self._committer: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[], None]] = []
        self._empty = asyncio.Event()  # set while no row is left
        self._closed = False
        try:
            self._count = self._executor.submit(self._open_sync).result()
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        if self._count == 0:
            self._empty.set()

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Outbox:
        """`Outbox(path)` without blocking the event loop."""
        return await asyncio.to_thread(cls, path)

    def __len__(self) -> int:
        """Rows committed and not yet removed."""
        return self._count

    async def size(self) -> int:
        """Rows in the file, counted there."""
        return await self._call(self._size_sync)

    async def append(self, records: Sequence[Record]) -> None:
        """Store the records; return once they are durable (fsynced), all or none of them."""
        if self._closed:
            raise RuntimeError("the outbox is closed")
        if not records:
            return
        payloads = [to_json(record) for record in records]
        loop = asyncio.get_running_loop()
        durable: asyncio.Future[None] = loop.create_future()
        self._pending.append((payloads, durable))
        if self._committer is None or self._committer.done():
            self._committer = loop.create_task(self._commit_pending())
        # A cancelled caller leaves the commit going: its records may still become durable.
        await asyncio.shield(durable)

    async def peek(self, limit: int) -> list[tuple[int, Record]]:
        """The oldest `limit` rows, as (id, record), in id order."""
        return await self._call(self._peek_sync, limit)

    async def remove(self, upto_id: int) -> None:
        """Remove every row up to `upto_id` included (they are in the database now)."""
        deleted = asyncio.get_running_loop().run_in_executor(
            self._executor, self._delete_sync, upto_id
        )
        deleted.add_done_callback(self._removed)  # counts them even if the caller is cancelled
        await asyncio.shield(deleted)

    async def wait_empty(self) -> None:
        """Return once no row is left."""
        await self._empty.wait()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` in the event loop after each commit that added rows."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    async def close(self) -> None:
        """Finish the commits under way, then close the file (stop its `Drainer` first)."""
        if self._closed:
            return
        self._closed = True
        if self._committer is not None:
            await self._committer
        await self._call(self._close_sync)
        self._executor.shutdown(wait=False)  # its one thread is idle: it ends at once

    # --- in the event loop --------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _commit_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            rows = [payload for payloads, _ in batch for payload in payloads]
            try:
                await self._call(self._insert_sync, rows)
            except Exception as exc:
                for _, durable in batch:
                    if not durable.done():
                        durable.set_exception(exc)
                continue
            self.commits += 1
            self._count += len(rows)
            self._empty.clear()
            for _, durable in batch:
                if not durable.done():
                    durable.set_result(None)
            for listener in list(self._listeners):
                listener()

    def _removed(self, deleted: asyncio.Future[int]) -> None:
        if deleted.cancelled() or deleted.exception() is not None:
            return
        self._count -= deleted.result()
        if self._count == 0:
            self._empty.set()

    # --- in the outbox thread -----------------------------------------------------------

    def _open_sync(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)  # transactions spelled out
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # each commit fsyncs the WAL
            db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            db.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, payload BLOB)")
            count: int = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        except BaseException:
            db.close()
            raise
        self._db = db
        return count

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the outbox is closed")
        return self._db

    def _insert_sync(self, rows: list[bytes]) -> None:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO outbox (payload) VALUES (?)", [(row,) for row in rows])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _peek_sync(self, limit: int) -> list[tuple[int, Record]]:
        found = self._conn().execute("SELECT id, payload FROM outbox ORDER BY id LIMIT ?", (limit,))
        return [(row_id, from_json(payload)) for row_id, payload in found]

    def _delete_sync(self, upto_id: int) -> int:
        return self._conn().execute("DELETE FROM outbox WHERE id <= ?", (upto_id,)).rowcount

    def _size_sync(self) -> int:
        count: int = self._conn().execute("SELECT count(*) FROM outbox").fetchone()[0]
        return count

    def _close_sync(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class Drainer:
    """Moves the outbox's rows to the database in the background, oldest first.

    Idle, it waits for an append; on a database error it keeps the rows and retries after a
    pause that doubles from `min_backoff_s` up to `max_backoff_s`.
    """

    def __init__(
        self,
        outbox: Outbox,
        records: Records,
        *,
        batch_size: int = MAX_BATCH,
        min_backoff_s: float = MIN_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
        linger_s: float = LINGER_S,
    ) -> None:
        self.outbox = outbox
        self.records = records  # may be replaced while running: the next batch goes there
        self.batch_size = max(1, min(batch_size, MAX_BATCH))
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.linger_s = linger_s
        self.written = 0  # records written to the database (a repeated batch counts again)
        self.failures = 0  # failed attempts to write a batch
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        """Records waiting in the outbox."""
        return len(self.outbox)

    def start(self) -> None:
        """Start draining (in the running event loop)."""
        if self._task is not None:
            raise RuntimeError("the drainer is already running")
        self._stopping = False
        self.outbox.add_listener(self._wake.set)
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="pairline-records-drainer"
        )

    async def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Drain what is left for up to `timeout` seconds, then stop; the rest stays put."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self.outbox.remove_listener(self._wake.set)
            self._task = None

    async def drained(self) -> None:
        """Return once the outbox is empty."""
        await self.outbox.wait_empty()

    async def until(self, predicate: Callable[[Drainer], bool]) -> None:
        """Return once `predicate(self)` holds, checked after each batch written or failed."""
        async with self._progress:
            await self._progress.wait_for(lambda: predicate(self))

    async def _run(self) -> None:
        failed_in_a_row = 0
        while True:
            if len(self.outbox) == 0:
                if self._stopping:
                    return
                self._wake.clear()  # nothing runs between this and the wait: no lost wake-up
                await self._wake.wait()
                continue
            try:
                await self._move_batch()
            except Exception as exc:
                delay = min(self.min_backoff_s * 2**failed_in_a_row, self.max_backoff_s)
                failed_in_a_row += 1
                self.failures += 1
                log.warning(
                    "records_write_failed",
                    error=f"{type(exc).__name__}: {exc}",
                    backlog=len(self.outbox),
                    retry_in_s=delay,
                )
                await self._notify()
                await asyncio.sleep(delay)  # the backoff itself, not a stand-in for an event
                continue
            if failed_in_a_row:
                log.info(
                    "records_write_recovered",
                    failed_attempts=failed_in_a_row,
                    backlog=len(self.outbox),
                )
                failed_in_a_row = 0
            await self._notify()
            if not self._stopping and len(self.outbox) < self.batch_size:
                await asyncio.sleep(self.linger_s)  # let the next batch gather

    async def _move_batch(self) -> None:
        rows = await self.outbox.peek(self.batch_size)
        if not rows:
            return
        await self.records.write([record for _, record in rows])
        await self.outbox.remove(rows[-1][0])  # only now: the transaction has committed
        self.written += len(rows)

    async def _notify(self) -> None:
        async with self._progress:
            self._progress.notify_all()
