"""The tables, as SQLAlchemy models. Times are epoch ms (BigInteger), as everywhere else.

The migrations in `migrations/versions` create exactly these; a test compares the two.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={"ix": "ix_%(table_name)s_%(column_0_N_name)s"})


class User(Base):
    __tablename__ = "users"

    user_id: Mapped[str] = mapped_column(String, primary_key=True)
    display_name: Mapped[str] = mapped_column(String)
    kind: Mapped[str] = mapped_column(String)  # "guest" | "operator"
    first_seen_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)


class Call(Base):
    __tablename__ = "calls"
    # (user, ended_at) finds a user's open calls; its first column serves look-ups by user.
    __table_args__ = (
        Index("ix_calls_user_a_ended_at", "user_a", "ended_at"),
        Index("ix_calls_user_b_ended_at", "user_b", "ended_at"),
    )

    match_id: Mapped[str] = mapped_column(String, primary_key=True)
    user_a: Mapped[str] = mapped_column(String)
    user_b: Mapped[str] = mapped_column(String)
    media_room: Mapped[str | None] = mapped_column(String)
    # Null only while a `CallEnded` has arrived before its `CallConfirmed`.
    proposed_at: Mapped[int | None] = mapped_column(BigInteger)
    confirmed_at: Mapped[int | None] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    end_reason: Mapped[str | None] = mapped_column(String)
    ended_by: Mapped[str | None] = mapped_column(String)


class Block(Base):
    """A block, looked up by its pair. A removed block stays as a tombstone (`removed_at`), so
    a late copy of the `BlockAdded` it undid cannot bring it back."""

    __tablename__ = "blocks"

    blocker: Mapped[str] = mapped_column(String, primary_key=True)
    blocked: Mapped[str] = mapped_column(String, primary_key=True)
    match_id: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[int] = mapped_column(BigInteger)
    removed_at: Mapped[int | None] = mapped_column(BigInteger)


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_report_key", "report_key", unique=True),
        Index("ix_reports_reported", "reported"),
        Index("ix_reports_reporter", "reporter"),
        Index("ix_reports_created_at", "created_at"),
        Index("ix_reports_reason", "reason"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    report_key: Mapped[str] = mapped_column(String)  # the caller's id: stored once
    reporter: Mapped[str] = mapped_column(String)
    reported: Mapped[str] = mapped_column(String)
    match_id: Mapped[str | None] = mapped_column(String)
    reason: Mapped[str] = mapped_column(String)
    details: Mapped[str] = mapped_column(Text)  # at most 1,000 characters (protocol.md)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Ban(Base):
    __tablename__ = "bans"

    user_id: Mapped[str] = mapped_column(String, primary_key=True)
    reason: Mapped[str] = mapped_column(String)
    banned_at: Mapped[int] = mapped_column(BigInteger)
    until: Mapped[int | None] = mapped_column(BigInteger)  # null: for good
    banned_by: Mapped[str] = mapped_column(String)


class SkipPenalty(Base):
    __tablename__ = "skip_penalties"

    user_id: Mapped[str] = mapped_column(String, primary_key=True)
    skips: Mapped[list[Any]] = mapped_column(JSON)  # times of recent skips, oldest first
    level: Mapped[int] = mapped_column(Integer)
    cooldown_until: Mapped[int] = mapped_column(BigInteger)
    # The `at` of the record that set this state: an older one arriving late is ignored.
    updated_at: Mapped[int] = mapped_column(BigInteger)
