from __future__ import annotations

import msgspec
import pytest

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

EVERY_KIND: list[Record] = [
    CallConfirmed("m1", ("a", "b"), "room-1", 100, 120),
    CallConfirmed("m2", ("a", "b"), None, 100, 120),
    CallEnded("m1", ("a", "b"), 900, "skipped", "a"),
    CallEnded("m2", ("a", "b"), 900, "timed_out", None),
    BlockAdded("a", "b", "m1", 950),
    BlockAdded("a", "c", None, 950),
    BlockRemoved("a", "b", 990),
    ReportFiled("k1", "a", "b", "m1", "abuse", "said ✗ things", 960),
    ReportFiled("k2", "a", "b", None, "spam", "", 960),
    SkipPenaltySet("a", [1, 2, 3], 1, 5000, 970),
    UserSeen("a", "Ann", "guest", 10),
    UserSeen("op", "Ops", "operator", 10),
]


@pytest.mark.parametrize("record", EVERY_KIND, ids=lambda r: type(r).__name__)
def test_round_trip(record: Record) -> None:
    data = to_json(record)
    assert isinstance(data, bytes)
    back = from_json(data)
    assert back == record
    assert type(back) is type(record)


def test_json_names_its_type() -> None:
    assert msgspec.json.decode(to_json(BlockRemoved("a", "b", 1))) == {
        "type": "BlockRemoved",
        "blocker": "a",
        "blocked": "b",
        "at": 1,
    }


@pytest.mark.parametrize(
    "data",
    [
        b"{}",
        b'{"type": "Nope", "at": 1}',
        b'{"type": "UserSeen", "user_id": "a", "display_name": "A", "kind": "admin", "at": 1}',
        b'{"type": "BlockRemoved", "blocker": "a", "blocked": "b"}',
        b"not json",
    ],
)
def test_rejects_what_is_no_record(data: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        from_json(data)
