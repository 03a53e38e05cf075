"""Databases for the records tests: a SQLite file, or a fresh PostgreSQL database of its own.

PostgreSQL must be running (`PAIRLINE_TEST_PG`, default postgres@127.0.0.1:5432/test, trust
auth): without it the tests fail, never skip, so a green run always covered both backends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from pairline.records import Records, make_engine, migrate

PG_ADMIN_URL = os.environ.get("PAIRLINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_ADMIN_URL, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"the records tests need PostgreSQL at {PG_ADMIN_URL} (set PAIRLINE_TEST_PG to "
            f"another server): {type(exc).__name__}: {exc}",
            pytrace=False,
        )


def pg_url_of(database: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'records.db'}"


@pytest.fixture
async def postgresql_url() -> AsyncIterator[str]:
    """A database of this test's own (tests run in parallel), dropped afterwards."""
    name = f"pairline_t_{uuid.uuid4().hex}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield pg_url_of(name)
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
async def records(db_url: str) -> AsyncIterator[Records]:
    """`Records` over a migrated database."""
    await migrate.upgrade(db_url)
    engine = make_engine(db_url)
    yield Records(engine)
    await engine.dispose()
