from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from pairline.records import async_url, migrate
from pairline.records.models import Base
from tests.records.netutil import free_port

TABLES = {"users", "calls", "blocks", "reports", "bans", "skip_penalties"}
INDEXES = {
    "calls": {
        "ix_calls_user_a_ended_at": ["user_a", "ended_at"],
        "ix_calls_user_b_ended_at": ["user_b", "ended_at"],
    },
    "reports": {
        "ix_reports_report_key": ["report_key"],
        "ix_reports_reported": ["reported"],
        "ix_reports_reporter": ["reporter"],
        "ix_reports_created_at": ["created_at"],
        "ix_reports_reason": ["reason"],
    },
}
HEAD = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


async def _inspect(url: str) -> dict[str, Any]:
    """Tables, their indexes, and what autogenerate finds different from the models."""

    def look(connection: Connection) -> dict[str, Any]:
        inspector = inspect(connection)
        tables = set(inspector.get_table_names()) - {"alembic_version"}
        indexes = {
            table: {ix["name"]: ix["column_names"] for ix in inspector.get_indexes(table)}
            for table in tables
        }
        unique = {
            ix["name"]
            for table in tables
            for ix in inspector.get_indexes(table)
            if ix.get("unique")
        }
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        return {"tables": tables, "indexes": indexes, "unique": unique, "diff": diff}

    engine = create_async_engine(async_url(url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


async def test_up_down_up(db_url: str) -> None:
    assert HEAD == "0001"
    assert await migrate.current(db_url) is None

    for _ in range(2):
        await migrate.upgrade(db_url)
        assert await migrate.current(db_url) == HEAD
        found = await _inspect(db_url)
        assert found["tables"] == TABLES
        for table, expected in INDEXES.items():
            assert found["indexes"][table] == expected
        assert found["unique"] == {"ix_reports_report_key"}
        assert found["diff"] == []  # the migration builds exactly the models

        await migrate.downgrade(db_url)
        assert await migrate.current(db_url) is None
        assert (await _inspect(db_url))["tables"] == set()


async def test_upgrade_twice_changes_nothing(db_url: str) -> None:
    await migrate.upgrade(db_url)
    await migrate.upgrade(db_url, "head")
    assert await migrate.current(db_url) == HEAD


def test_from_a_command_line(db_url: str) -> None:
    """`pairline migrate`, up to the newest revision and back down to none."""

    def pairline_migrate(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pairline", "migrate", "--database-url", db_url, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert pairline_migrate() == f"schema revision: {HEAD}"
    assert pairline_migrate() == f"schema revision: {HEAD}"  # already there: nothing to do
    assert pairline_migrate("--down", "base") == "schema revision: none"


async def test_alembic_commands_with_a_url(db_url: str) -> None:
    """env.py's own engine (the `alembic` command line's way), from a thread of its own."""
    config = migrate.alembic_config(db_url)
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await migrate.current(db_url) == HEAD
    await asyncio.to_thread(command.downgrade, config, "base")
    assert await migrate.current(db_url) is None


async def test_concurrent_upgrades_in_one_process(db_url: str) -> None:
    """Alembic keeps its state in globals: runs may not interleave."""
    await asyncio.gather(*(migrate.upgrade(db_url) for _ in range(4)))
    assert await migrate.current(db_url) == HEAD
    assert (await _inspect(db_url))["tables"] == TABLES


async def test_nodes_starting_together_migrate_one_at_a_time(postgresql_url: str) -> None:
    """Processes of their own, released together: PostgreSQL's advisory lock orders them."""
    script = (
        "import asyncio, sys\n"
        "from pairline.records import migrate\n"
        "sys.stdin.readline()\n"
        "asyncio.run(migrate.upgrade(sys.argv[1]))\n"
    )
    nodes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            postgresql_url,
            stdin=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    # All of them have imported everything by the time they read stdin: release them at once.
    for node in nodes:
        assert node.stdin is not None
        node.stdin.write(b"go\n")
    for node in nodes:
        _, stderr = await asyncio.wait_for(node.communicate(), 60)
        assert node.returncode == 0, stderr.decode()
    assert await migrate.current(postgresql_url) == HEAD
    assert (await _inspect(postgresql_url))["tables"] == TABLES


async def test_unreachable_database_fails_at_once() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(OSError):
        await asyncio.wait_for(migrate.upgrade(url), 10)
    with pytest.raises(OSError):
        await asyncio.wait_for(migrate.current(url), 10)
