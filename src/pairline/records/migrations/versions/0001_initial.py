"""The records tables: users, calls, blocks, reports, bans, skip_penalties.

Revision ID: 0001
Revises:
Create Date: 2025-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(), primary_key=True),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("first_seen_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "calls",
        sa.Column("match_id", sa.String(), primary_key=True),
        sa.Column("user_a", sa.String(), nullable=False),
        sa.Column("user_b", sa.String(), nullable=False),
        sa.Column("media_room", sa.String(), nullable=True),
        sa.Column("proposed_at", sa.BigInteger(), nullable=True),
        sa.Column("confirmed_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("end_reason", sa.String(), nullable=True),
        sa.Column("ended_by", sa.String(), nullable=True),
    )
    op.create_index("ix_calls_user_a_ended_at", "calls", ["user_a", "ended_at"])
    op.create_index("ix_calls_user_b_ended_at", "calls", ["user_b", "ended_at"])
    op.create_table(
        "blocks",
        sa.Column("blocker", sa.String(), primary_key=True),
        sa.Column("blocked", sa.String(), primary_key=True),
        sa.Column("match_id", sa.String(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("removed_at", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("report_key", sa.String(), nullable=False),
        sa.Column("reporter", sa.String(), nullable=False),
        sa.Column("reported", sa.String(), nullable=False),
        sa.Column("match_id", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_reports_report_key", "reports", ["report_key"], unique=True)
    op.create_index("ix_reports_reported", "reports", ["reported"])
    op.create_index("ix_reports_reporter", "reports", ["reporter"])
    op.create_index("ix_reports_created_at", "reports", ["created_at"])
    op.create_index("ix_reports_reason", "reports", ["reason"])
    op.create_table(
        "bans",
        sa.Column("user_id", sa.String(), primary_key=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("banned_at", sa.BigInteger(), nullable=False),
        sa.Column("until", sa.BigInteger(), nullable=True),
        sa.Column("banned_by", sa.String(), nullable=False),
    )
    op.create_table(
        "skip_penalties",
        sa.Column("user_id", sa.String(), primary_key=True),
        sa.Column("skips", sa.JSON(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("cooldown_until", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("skip_penalties")
    op.drop_table("bans")
    op.drop_index("ix_reports_reason", table_name="reports")
    op.drop_index("ix_reports_created_at", table_name="reports")
    op.drop_index("ix_reports_reporter", table_name="reports")
    op.drop_index("ix_reports_reported", table_name="reports")
    op.drop_index("ix_reports_report_key", table_name="reports")
    op.drop_table("reports")
    op.drop_table("blocks")
    op.drop_index("ix_calls_user_b_ended_at", table_name="calls")
    op.drop_index("ix_calls_user_a_ended_at", table_name="calls")
    op.drop_table("calls")
    op.drop_table("users")
