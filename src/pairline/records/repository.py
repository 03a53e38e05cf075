"""`Records`: the durable records in SQL — idempotent batch writes and the look-ups.

Every write is an upsert guarded by the record's own time, so re-applying a batch, a prefix of
one, or an older record after a newer one leaves the rows as they were: the outbox delivers at
least once, in order, and may repeat what a crash kept it from removing.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, Executable, and_, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from pairline.records.events import (
    BlockAdded,
    BlockRemoved,
    CallConfirmed,
    CallEnded,
    Record,
    ReportFiled,
    SkipPenaltySet,
    UserSeen,
)
from pairline.records.models import Ban, Block, Call, Report, SkipPenalty, User

SERVER_RESTART = "server_restart"  # the end reason of calls a crash left open
MAX_REPORT_PAGE = 500
_CHUNK = 500  # ids per `IN (…)`: well under every driver's limit of bound parameters

ConflictInsert: TypeAlias = postgresql.Insert | sqlite.Insert  # INSERT … ON CONFLICT
InsertFor: TypeAlias = Callable[[type[Any]], ConflictInsert]


class Records:
    """The records database behind an engine (see `database.make_engine`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # --- writes -------------------------------------------------------------------------

    async def write(self, batch: Sequence[Record]) -> None:
        """Apply the records in order, in one transaction, idempotently."""
        if not batch:
            return
        async with self.engine.begin() as connection:
            dialect = connection.dialect.name
            # Runs of one kind go as one executemany: still one statement per record, in order
            # (aiosqlite and asyncpg never fold them into one multi-row INSERT, which would
            # fail on two records of one key).
            for kind, run in itertools.groupby(batch, key=type):
                values = _UPSERTS[kind].values
                await connection.execute(
                    _upsert_statement(dialect, kind), [values(record) for record in run]
                )

    async def ban(
        self, user_id: str, reason: str, until: int | None, banned_by: str, at: int
    ) -> None:
        """Ban the user until `until` (None: for good), replacing any ban it has."""
        values = {"reason": reason, "banned_at": at, "until": until, "banned_by": banned_by}
        async with self.engine.begin() as connection:
            stmt = _insert_for(connection.dialect.name)(Ban).values(user_id=user_id, **values)
            await connection.execute(
                stmt.on_conflict_do_update(index_elements=[Ban.user_id], set_=values)
            )

    async def unban(self, user_id: str) -> bool:
        """Lift the user's ban; False if it had none."""
        async with self.engine.begin() as connection:
            result = await connection.execute(delete(Ban).where(Ban.user_id == user_id))
            return result.rowcount > 0

    async def close_open_calls(self, reason: str, at: int, keep: Collection[str] = ()) -> int:
        """End every call still open, except those in `keep`; return how many were ended.

        At start-up (reason "server_restart"), after the outbox has drained: calls a crash left
        open. A `CallEnded` arriving later still replaces a "server_restart" end."""
        ended = {"ended_at": at, "end_reason": reason, "ended_by": None}
        is_open = Call.ended_at.is_(None)
        async with self.engine.begin() as connection:
            if not keep:
                result = await connection.execute(update(Call).where(is_open).values(ended))
                return result.rowcount
            kept = set(keep)
            found = await connection.scalars(select(Call.match_id).where(is_open))
            to_end = [match_id for match_id in found if match_id not in kept]
            count = 0
            for start in range(0, len(to_end), _CHUNK):
                chunk = to_end[start : start + _CHUNK]
                result = await connection.execute(
                    update(Call).where(is_open, Call.match_id.in_(chunk)).values(ended)
                )
                count += result.rowcount
            return count

    # --- look-ups -----------------------------------------------------------------------

    async def blocks_of(self, user_id: str) -> list[tuple[str, int]]:
        """(blocked user, created_at) of every block the user made, oldest first."""
        query = (
            select(Block.blocked, Block.created_at)
            .where(Block.blocker == user_id, Block.removed_at.is_(None))
            .order_by(Block.created_at, Block.blocked)
        )
        async with self.engine.connect() as connection:
            return [(row.blocked, row.created_at) for row in await connection.execute(query)]

    async def all_blocks(self) -> list[tuple[str, str]]:
        """(blocker, blocked) of every block: what the matcher loads at start."""
        query = select(Block.blocker, Block.blocked).where(Block.removed_at.is_(None))
        async with self.engine.connect() as connection:
            return [(row.blocker, row.blocked) for row in await connection.execute(query)]

    async def is_blocked(self, a: str, b: str) -> bool:
        """Whether either of the two blocked the other."""
        either = or_(
            and_(Block.blocker == a, Block.blocked == b),
            and_(Block.blocker == b, Block.blocked == a),
        )
        query = select(Block.blocker).where(either, Block.removed_at.is_(None)).limit(1)
        async with self.engine.connect() as connection:
            return (await connection.scalar(query)) is not None

    async def list_reports(
        self,
        *,
        reported: str | None = None,
        reporter: str | None = None,
        reason: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Reports, newest first, filtered; `since` ≤ created_at < `until`.

        Page on by passing the last report's id as `before_id`. `limit` is at most 500."""
        conditions: list[ColumnElement[bool]] = []
        if reported is not None:
            conditions.append(Report.reported == reported)
        if reporter is not None:
            conditions.append(Report.reporter == reporter)
        if reason is not None:
            conditions.append(Report.reason == reason)
        if since is not None:
            conditions.append(Report.created_at >= since)
        if until is not None:
            conditions.append(Report.created_at < until)
        if before_id is not None:
            conditions.append(Report.id < before_id)
        query = (
            select(Report.__table__)
            .where(*conditions)
            .order_by(Report.id.desc())
            .limit(max(0, min(limit, MAX_REPORT_PAGE)))
        )
        async with self.engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(query)]

    async def active_bans(self, now: int) -> dict[str, int | None]:
        """user → until (None: for good) of every ban in force at `now`."""
        query = select(Ban.user_id, Ban.until).where(_in_force(now))
        async with self.engine.connect() as connection:
            return {row.user_id: row.until for row in await connection.execute(query)}

    async def ban_of(self, user_id: str, now: int) -> tuple[str, int | None] | None:
        """(reason, until) of the user's ban in force at `now`, if any."""
        query = select(Ban.reason, Ban.until).where(Ban.user_id == user_id, _in_force(now))
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else (row.reason, row.until)

    async def skip_penalties(self, now: int) -> dict[str, tuple[list[int], int, int]]:
        """user → (skips, level, cooldown_until) of every skip state worth loading at `now`.

        A blank state (no skip, no escalation, cool-down over) is left out."""
        query = select(
            SkipPenalty.user_id, SkipPenalty.skips, SkipPenalty.level, SkipPenalty.cooldown_until
        )
        async with self.engine.connect() as connection:
            rows = await connection.execute(query)
            return {
                row.user_id: (list(row.skips), row.level, row.cooldown_until)
                for row in rows
                if row.skips or row.level > 0 or row.cooldown_until > now
            }

    async def call(self, match_id: str) -> dict[str, Any] | None:
        """The call's row, or None."""
        query = select(Call.__table__).where(Call.match_id == match_id)
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else dict(row._mapping)

    async def open_calls(self) -> list[str]:
        """Match ids of the calls not ended."""
        query = select(Call.match_id).where(Call.ended_at.is_(None)).order_by(Call.match_id)
        async with self.engine.connect() as connection:
            return list(await connection.scalars(query))


def _in_force(now: int) -> ColumnElement[bool]:
    return or_(Ban.until.is_(None), Ban.until > now)


def _insert_for(name: str) -> InsertFor:
    """The dialect's INSERT, the one with ON CONFLICT."""
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"records need SQLite or PostgreSQL, not {name}")


# Each kind of record has one upsert, built once per dialect and executed with its records'
# values as parameters: building the statement costs more than running it.


def _user_seen(insert: InsertFor) -> Executable:
    stmt = insert(User)
    new = stmt.excluded
    newer = new.last_seen_at >= User.last_seen_at  # name and kind: the latest sighting's
    earlier = new.first_seen_at < User.first_seen_at
    return stmt.on_conflict_do_update(
        index_elements=[User.user_id],
        set_={
            "display_name": case((newer, new.display_name), else_=User.display_name),
            "kind": case((newer, new.kind), else_=User.kind),
            "first_seen_at": case((earlier, new.first_seen_at), else_=User.first_seen_at),
            "last_seen_at": case((newer, new.last_seen_at), else_=User.last_seen_at),
        },
    )


def _user_seen_values(r: UserSeen) -> dict[str, Any]:
    return {
        "user_id": r.user_id,
        "display_name": r.display_name,
        "kind": r.kind,
        "first_seen_at": r.at,
        "last_seen_at": r.at,
    }


def _call_confirmed(insert: InsertFor) -> Executable:
    stmt = insert(Call)
    new = stmt.excluded
    # Fills in a row its `CallEnded` made first; never touches how the call ended.
    return stmt.on_conflict_do_update(
        index_elements=[Call.match_id],
        set_={
            "media_room": new.media_room,
            "proposed_at": new.proposed_at,
            "confirmed_at": new.confirmed_at,
        },
    )


def _call_confirmed_values(r: CallConfirmed) -> dict[str, Any]:
    user_a, user_b = r.users
    return {
        "match_id": r.match_id,
        "user_a": user_a,
        "user_b": user_b,
        "media_room": r.media_room,
        "proposed_at": r.proposed_at,
        "confirmed_at": r.confirmed_at,
    }


def _call_ended(insert: InsertFor) -> Executable:
    stmt = insert(Call)
    new = stmt.excluded
    # The first end stands, except the guess `close_open_calls` made after a crash.
    return stmt.on_conflict_do_update(
        index_elements=[Call.match_id],
        set_={"ended_at": new.ended_at, "end_reason": new.end_reason, "ended_by": new.ended_by},
        where=or_(Call.ended_at.is_(None), Call.end_reason == SERVER_RESTART),
    )


def _call_ended_values(r: CallEnded) -> dict[str, Any]:
    user_a, user_b = r.users
    return {
        "match_id": r.match_id,
        "user_a": user_a,
        "user_b": user_b,
        "ended_at": r.ended_at,
        "end_reason": r.end_reason,
        "ended_by": r.ended_by,
    }


def _block_added(insert: InsertFor) -> Executable:
    stmt = insert(Block)
    new = stmt.excluded
    # An active block keeps its first time; a tombstone revives only for a later block.
    return stmt.on_conflict_do_update(
        index_elements=[Block.blocker, Block.blocked],
        set_={"match_id": new.match_id, "created_at": new.created_at, "removed_at": None},
        where=and_(Block.removed_at.is_not(None), Block.removed_at < new.created_at),
    )


def _block_added_values(r: BlockAdded) -> dict[str, Any]:
    return {
        "blocker": r.blocker,
        "blocked": r.blocked,
        "match_id": r.match_id,
        "created_at": r.at,
        "removed_at": None,
    }


def _block_removed(insert: InsertFor) -> Executable:
    # A tombstone even where no block is stored yet: the `BlockAdded` it undoes may come later.
    stmt = insert(Block)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[Block.blocker, Block.blocked],
        set_={"removed_at": new.removed_at},
        where=and_(Block.removed_at.is_(None), Block.created_at <= new.removed_at),
    )


def _block_removed_values(r: BlockRemoved) -> dict[str, Any]:
    return {
        "blocker": r.blocker,
        "blocked": r.blocked,
        "match_id": None,
        "created_at": r.at,
        "removed_at": r.at,
    }


def _report_filed(insert: InsertFor) -> Executable:
    return insert(Report).on_conflict_do_nothing(index_elements=[Report.report_key])


def _report_filed_values(r: ReportFiled) -> dict[str, Any]:
    return {
        "report_key": r.report_key,
        "reporter": r.reporter,
        "reported": r.reported,
        "match_id": r.match_id,
        "reason": r.reason,
        "details": r.details,
        "created_at": r.at,
    }


def _skip_penalty_set(insert: InsertFor) -> Executable:
    stmt = insert(SkipPenalty)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[SkipPenalty.user_id],
        set_={
            "skips": new.skips,
            "level": new.level,
            "cooldown_until": new.cooldown_until,
            "updated_at": new.updated_at,
        },
        where=SkipPenalty.updated_at <= new.updated_at,  # a late older state is ignored
    )


def _skip_penalty_set_values(r: SkipPenaltySet) -> dict[str, Any]:
    return {
        "user_id": r.user_id,
        "skips": list(r.skips),
        "level": r.level,
        "cooldown_until": r.cooldown_until,
        "updated_at": r.at,
    }


@dataclass(frozen=True, slots=True)
class _Upsert:
    build: Callable[[InsertFor], Executable]
    values: Callable[[Any], dict[str, Any]]


_UPSERTS: dict[type[Any], _Upsert] = {
    UserSeen: _Upsert(_user_seen, _user_seen_values),
    CallConfirmed: _Upsert(_call_confirmed, _call_confirmed_values),
    CallEnded: _Upsert(_call_ended, _call_ended_values),
    BlockAdded: _Upsert(_block_added, _block_added_values),
    BlockRemoved: _Upsert(_block_removed, _block_removed_values),
    ReportFiled: _Upsert(_report_filed, _report_filed_values),
    SkipPenaltySet: _Upsert(_skip_penalty_set, _skip_penalty_set_values),
}


@functools.cache
def _upsert_statement(dialect: str, kind: type[Any]) -> Executable:
    return _UPSERTS[kind].build(_insert_for(dialect))
