"""Task events: every change of a task, with the conversation and tool call behind it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 19:34:40.117098
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import convstore.kit.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column(
            "changes",
            sa.JSON(none_as_null=True).with_variant(
                postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
        sa.Column("conversation_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("tool_call_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", convstore.kit.types.DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('created', 'updated', 'completed', 'reopened', 'deleted')",
            name=op.f("ck_task_events_action"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_task_events_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_events")),
    )
    op.create_index(
        op.f("ix_task_events_user_id_conversation_id"),
        "task_events",
        ["user_id", "conversation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_task_events_user_id_task_id_created_at"),
        "task_events",
        ["user_id", "task_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_task_events_user_id_task_id_created_at"), table_name="task_events")
    op.drop_index(op.f("ix_task_events_user_id_conversation_id"), table_name="task_events")
    op.drop_table("task_events")
