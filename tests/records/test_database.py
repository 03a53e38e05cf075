from __future__ import annotations

import pytest
from sqlalchemy import text

from pairline.records.database import async_url, make_engine


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "sqlite+aiosqlite:///pairline.db"),
        ("", "sqlite+aiosqlite:///pairline.db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p%40ss@h:5433/db", "postgresql+asyncpg://u:p%40ss@h:5433/db"),
        ("postgres://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?sslmode=require"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_async_url(given: str | None, expected: str) -> None:
    assert async_url(given) == expected


def test_async_url_rejects_what_is_no_url() -> None:
    with pytest.raises(ValueError, match="not a database URL"):
        async_url("pairline.db")


async def test_sqlite_engine_uses_wal_and_a_busy_timeout(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.scalar(text("PRAGMA journal_mode"))) == "wal"
            assert (await connection.scalar(text("PRAGMA busy_timeout"))) == 5000
    finally:
        await engine.dispose()


async def test_engine_reaches_the_database(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as connection:
            assert (await connection.scalar(text("SELECT 1"))) == 1
    finally:
        await engine.dispose()
