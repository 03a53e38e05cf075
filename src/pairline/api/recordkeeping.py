"""The node's side of the records: open them at start, recover what a crash left, close them.

Start-up order matters: migrate; drain what a crashed process left in the outbox; then close the
calls that crash left open (only where calls die with the node: the memory store) and load the
blocks, bans and skip penalties into the store, so that the matcher enforces them from the first
pairing on. A database that cannot be reached at start delays none of this past a few seconds:
the node serves, records wait in the outbox, and the warning says what was skipped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from pairline.engine.clock import now_ms
from pairline.records.database import async_url, make_engine
from pairline.records.migrate import current, upgrade
from pairline.records.outbox import Drainer, Outbox
from pairline.records.repository import Records
from pairline.settings import Settings
from pairline.store.base import Store

log = structlog.get_logger("pairline.records")

STARTUP_DRAIN_S = 10.0  # how long start-up waits for a crashed run's records to reach the database


@dataclass
class RecordKeeping:
    records: Records
    outbox: Outbox
    drainer: Drainer
    db: AsyncEngine

    @classmethod
    async def open(cls, settings: Settings) -> RecordKeeping:
        url = async_url(settings.database_url)
        await migrate(url)
        db = make_engine(url)
        outbox = await Outbox.open(settings.outbox_path)
        drainer = Drainer(outbox, Records(db))
        drainer.start()
        return cls(drainer.records, outbox, drainer, db)

    async def recover(self, store: Store, *, calls_die_with_node: bool) -> None:
        """Bring the records and the store in line after a (possibly unclean) stop."""
        try:
            await asyncio.wait_for(self.drainer.drained(), STARTUP_DRAIN_S)
        except TimeoutError:
            log.error("records_unreachable_at_start", backlog=self.drainer.backlog)
            return
        now = now_ms()
        if calls_die_with_node:
            closed = await self.records.close_open_calls("server_restart", now)
            if closed:
                log.warning("calls_closed_at_start", count=closed, reason="server_restart")
        blocks = await self.records.all_blocks()
        bans = await self.records.active_bans(now)
        penalties = await self.records.skip_penalties(now)
        await store.load_blocks(blocks)
        await store.load_bans(bans)
        await store.load_skip_penalties(penalties)
        log.info("records_loaded", blocks=len(blocks), bans=len(bans), penalties=len(penalties))

    async def close(self) -> None:
        await self.drainer.stop()
        await self.outbox.close()
        await self.db.dispose()


async def migrate(url: str) -> None:
    """Upgrade the schema to the newest revision. Several nodes may start at once: if one
    loses the race, the schema another created is just as good."""
    try:
        await upgrade(url)
    except Exception:
        if await current(url) is None:
            raise
        log.info("migrated_by_another_node", revision=await current(url))
