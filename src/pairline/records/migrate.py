"""Schema migrations from code: no alembic.ini needed, and callable inside an event loop.

Alembic's commands are synchronous and keep their state in module globals (`alembic.context`,
`alembic.op`), so two may never interleave: each runs in a worker thread, one at a time in
the process, and env.py drives it with an async engine of its own. Across processes, the
PostgreSQL advisory lock in env.py makes nodes starting together migrate one after the other.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import pool

from pairline.records.database import async_url, make_engine

MIGRATIONS = Path(__file__).with_name("migrations")

_one_at_a_time = threading.Lock()  # held by the worker thread: never blocks an event loop


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for this package's migrations (and the database at `url`)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        # Alembic interpolates options: a `%` in a password must be doubled.
        config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`."""
    await asyncio.to_thread(_upgrade, alembic_config(url), revision)


async def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database at `url` down to `revision` (`base`: no tables left)."""
    await asyncio.to_thread(_downgrade, alembic_config(url), revision)


async def current(url: str) -> str | None:
    """The database's revision; None before the first migration."""
    engine = make_engine(url, poolclass=pool.NullPool)  # one connection, closed after
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


def _upgrade(config: Config, revision: str) -> None:
    with _one_at_a_time:
        command.upgrade(config, revision)


def _downgrade(config: Config, revision: str) -> None:
    with _one_at_a_time:
        command.downgrade(config, revision)
