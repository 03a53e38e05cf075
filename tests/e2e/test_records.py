"""Records that outlive the process: calls, blocks and reports, through kill -9 and restarts."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from pairline.client import Client, CommandError
from pairline.records.database import make_engine
from pairline.records.repository import Records
from tests.conftest import RunningServer, ServerFactory, launch_server
from tests.e2e.test_matching import confirmed_pair

# Guest tokens must still verify after a restart.
SETTINGS = {"PAIRLINE_SECRET": "records-test-secret-" + "x" * 16}


@asynccontextmanager
async def records_of(server: RunningServer) -> AsyncIterator[Records]:
    """The server's own records (its default SQLite file), read once it has stopped."""
    engine = make_engine("sqlite:///" + os.path.join(server.workdir, "pairline.db"))
    try:
        yield Records(engine)
    finally:
        await engine.dispose()


@asynccontextmanager
async def restarted(server: RunningServer) -> AsyncIterator[RunningServer]:
    """The same server again (same folder, so the same records and outbox); stopped after."""
    again = await launch_server(server.settings, workdir=server.workdir)
    try:
        yield again
    finally:
        await again.stop()


async def test_a_call_cut_by_kill_9_is_on_record_and_closed_at_restart(
    start_server: ServerFactory,
) -> None:
    server = await start_server(**SETTINGS)
    async with Client(server.url, reconnect=False) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        await server.stop(signal.SIGKILL)  # the users were told: the record must exist
    async with restarted(server):
        pass  # start-up drains the outbox and closes the calls the crash left open
    async with records_of(server) as records:
        call = await records.call(match_id)
    assert call is not None
    assert call["confirmed_at"] is not None and call["ended_at"] is not None
    assert call["end_reason"] == "server_restart"
    assert sorted([call["user_a"], call["user_b"]]) == sorted([ann.user_id, bob.user_id])


async def test_an_ended_call_is_recorded_with_who_ended_it(start_server: ServerFactory) -> None:
    server = await start_server(**SETTINGS)
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        await ann.skip()
        await bob.wait_for("partner_left")
    await server.stop()
    async with records_of(server) as records:
        call = await records.call(match_id)
    assert call is not None
    assert (call["end_reason"], call["ended_by"]) == ("skipped", ann.user_id)


async def test_blocks_and_reports_survive_a_restart(start_server: ServerFactory) -> None:
    server = await start_server(**SETTINGS)
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        match_id = await confirmed_pair(ann, bob)
        await ann.report("spam", "sent links", match_id)
        ann_token, bob_token = ann.token, bob.token
    await server.stop()
    async with records_of(server) as records:
        reports = await records.list_reports(reported=bob.user_id)
        assert [(r["reporter"], r["reason"], r["details"]) for r in reports] == [
            (ann.user_id, "spam", "sent links")
        ]
        assert await records.is_blocked(ann.user_id, bob.user_id)

    async with (
        restarted(server) as again,
        Client(again.url, token=ann_token) as ann2,
        Client(again.url, token=bob_token) as bob2,
        Client(again.url) as cat,
    ):
        await ann2.join()
        await bob2.join()  # compatible with ann in every way but the block
        await cat.join()
        matched = await cat.wait_for("matched")
        assert matched.raw["partner"]["user_id"] == ann2.user_id
        assert (await bob2.refresh_state())["status"] == "queued"


async def test_a_skip_cooldown_survives_a_restart(start_server: ServerFactory) -> None:
    server = await start_server(**SETTINGS, PAIRLINE_SKIP_LIMIT=1, PAIRLINE_SKIP_COOLDOWNS_S="600")
    async with Client(server.url) as ann, Client(server.url) as bob:
        await ann.join()
        await bob.join()
        await confirmed_pair(ann, bob)
        reply = await ann.skip()
        assert reply["requeued"] is False and reply["cooldown_ms"] == 600_000
        ann_token = ann.token
    await server.stop()
    async with restarted(server) as again, Client(again.url, token=ann_token) as ann2:
        with pytest.raises(CommandError) as refused:
            await ann2.join()
        assert refused.value.code == "cooldown"
        assert 0 < (refused.value.retry_after_ms or 0) <= 600_000
