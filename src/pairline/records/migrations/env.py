"""Alembic environment: migrates `sqlalchemy.url` over an async engine of its own (in the
thread `records.migrate` runs it in), or over a connection handed over in
`config.attributes["connection"]` (alembic's recipe for sharing one)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection

from pairline.records.database import async_url, make_engine
from pairline.records.models import Base

config = context.config
target_metadata = Base.metadata
# Nodes starting together migrate one at a time on PostgreSQL: the others then find it done.
PG_LOCK_KEY = 0x7061_6972_6C69_6E65  # "pairline"


def database_url() -> str:
    """`-x url=…` on the command line, else the configuration's `sqlalchemy.url`."""
    given = context.get_x_argument(as_dictionary=True).get("url")
    return async_url(given or config.get_main_option("sqlalchemy.url"))


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (`alembic upgrade --sql`)."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters tables by copying them: future migrations get that for free.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Held until this transaction ends (PostgreSQL's DDL is transactional), and taken
            # before alembic reads the current revision.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = make_engine(database_url(), poolclass=pool.NullPool)  # one connection, closed after
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
