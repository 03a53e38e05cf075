"""Database URLs and engines: the async drivers (aiosqlite, asyncpg) for any URL given."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

DEFAULT_URL = "sqlite+aiosqlite:///pairline.db"  # a file in the working folder
SQLITE_BUSY_TIMEOUT_MS = 5000  # wait this long for another writer instead of failing at once
PG_CONNECT_TIMEOUT_S = 5.0  # an unreachable server fails a write soon; the outbox keeps it

# Scheme of a sync (or bare) URL → the async driver's scheme.
_ASYNC_SCHEMES = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
}


def async_url(url: str | None) -> str:
    """The URL with an async driver: none → `sqlite+aiosqlite:///pairline.db`."""
    if not url:
        return DEFAULT_URL
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    return f"{_ASYNC_SCHEMES.get(scheme.lower(), scheme)}://{rest}"


def make_engine(url: str | None, **options: Any) -> AsyncEngine:
    """An engine for the URL (made async); SQLite gets WAL and a busy timeout, PostgreSQL a
    connect timeout. `options` go to `create_async_engine` (e.g. `poolclass`)."""
    full = async_url(url)
    if full.startswith("sqlite"):
        engine = create_async_engine(full, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if full.startswith("postgresql+asyncpg"):
        options.setdefault("connect_args", {"timeout": PG_CONNECT_TIMEOUT_S})
    # Pre-ping: connections left over from before a database restart are replaced, not used.
    options.setdefault("pool_pre_ping", True)
    return create_async_engine(full, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # readers don't wait for the writer
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()
