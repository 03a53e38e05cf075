"""Durable records of users, calls, blocks, reports, bans and skip penalties, kept in SQL.

Records go first into a local `Outbox` (durable before the users hear of them), then a
`Drainer` writes them to the database with `Records.write`, so matching never waits on it.
"""

from pairline.records.database import async_url, make_engine
from pairline.records.events import (
    BlockAdded,
    BlockRemoved,
    CallConfirmed,
    CallEnded,
    Record,
    ReportFiled,
    SkipPenaltySet,
    UserSeen,
    from_json,
    to_json,
)
from pairline.records.outbox import Drainer, Outbox
from pairline.records.repository import Records

__all__ = [
    "BlockAdded",
    "BlockRemoved",
    "CallConfirmed",
    "CallEnded",
    "Drainer",
    "Outbox",
    "Record",
    "Records",
    "ReportFiled",
    "SkipPenaltySet",
    "UserSeen",
    "async_url",
    "from_json",
    "make_engine",
    "to_json",
]
