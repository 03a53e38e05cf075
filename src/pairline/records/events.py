"""The records the server produces, as they travel through the outbox to the database.

Each is a fact with its own time, so the database can apply them idempotently: a record
delivered twice, or after newer ones, changes nothing (see `repository.Records.write`).
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import msgspec

UserKind: TypeAlias = Literal["guest", "operator"]


class CallConfirmed(msgspec.Struct, frozen=True, tag=True):
    match_id: str
    users: tuple[str, str]
    media_room: str | None
    proposed_at: int
    confirmed_at: int


class CallEnded(msgspec.Struct, frozen=True, tag=True):
    match_id: str
    users: tuple[str, str]
    ended_at: int
    end_reason: str  # skipped, ended, disconnected, timed_out, banned, server_restart, …
    ended_by: str | None


class BlockAdded(msgspec.Struct, frozen=True, tag=True):
    blocker: str
    blocked: str
    match_id: str | None
    at: int


class BlockRemoved(msgspec.Struct, frozen=True, tag=True):
    blocker: str
    blocked: str
    at: int


class ReportFiled(msgspec.Struct, frozen=True, tag=True):
    report_key: str  # unique, made by the caller: a report delivered twice is stored once
    reporter: str
    reported: str
    match_id: str | None
    reason: str
    details: str
    at: int


class SkipPenaltySet(msgspec.Struct, frozen=True, tag=True):
    """A user's whole skip state (`core.cooldown.SkipRecord`) as of `at`."""

    user_id: str
    skips: list[int]
    level: int
    cooldown_until: int
    at: int


class UserSeen(msgspec.Struct, frozen=True, tag=True):
    user_id: str
    display_name: str
    kind: UserKind
    at: int


Record: TypeAlias = (
    CallConfirmed | CallEnded | BlockAdded | BlockRemoved | ReportFiled | SkipPenaltySet | UserSeen
)

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Record] = msgspec.json.Decoder(Record)


def to_json(record: Record) -> bytes:
    """The record as JSON, tagged with its type name."""
    return _encoder.encode(record)


def from_json(data: bytes) -> Record:
    """A record from `to_json`'s output; raises `msgspec.ValidationError` on anything else."""
    return _decoder.decode(data)
