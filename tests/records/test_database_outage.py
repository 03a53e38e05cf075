"""PostgreSQL away for 30 s under load: matching goes on, and every record arrives afterwards."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.engine import make_url

from pairline.records import Records, make_engine
from pairline.records.migrate import upgrade
from tests.cluster.churn import run_churn
from tests.conftest import ServerFactory
from tests.records.netutil import TcpProxy

OUTAGE_S = 30


@pytest.mark.timeout(240)
async def test_a_database_outage_under_load_loses_no_record(
    start_server: ServerFactory, postgresql_url: str
) -> None:
    await upgrade(postgresql_url)
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    through_proxy = make_url(postgresql_url).set(host="127.0.0.1", port=proxy.port)
    server = await start_server(
        DATABASE_URL=through_proxy.render_as_string(hide_password=False),
        PAIRLINE_SKIP_LIMIT=0,
        PAIRLINE_RESUME_WINDOW_MS=3000,
    )
    await proxy.stop()  # the database goes away, with the node's connections to it
    report = await run_churn([server.url], users=40, seconds=OUTAGE_S, seed=11, settle_s=10)
    assert report.violations == []
    assert report.confirmed > 40, report  # matching never waited for the database
    await proxy.start()

    engine = make_engine(postgresql_url)
    try:
        records = Records(engine)
        missing = await _wait_for_calls(records, report.confirmed_ids, report.ended_ids)
        assert missing == [], f"{len(missing)} calls not (fully) recorded, e.g. {missing[:3]}"
    finally:
        await engine.dispose()
        await proxy.stop()


async def _wait_for_calls(
    records: Records, confirmed: set[str], ended: set[str], within_s: float = 30
) -> list[str]:
    """Poll the database (nothing else can say when another process's outbox is drained)
    until every call is there, confirmed, and ended if its users were told so."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        missing = []
        for match_id in sorted(confirmed):
            call = await records.call(match_id)
            recorded = call is not None and call["confirmed_at"] is not None
            if not recorded or (match_id in ended and call is not None and not call["ended_at"]):
                missing.append(match_id)
        if not missing or loop.time() > deadline:
            return missing
        await asyncio.sleep(0.5)
