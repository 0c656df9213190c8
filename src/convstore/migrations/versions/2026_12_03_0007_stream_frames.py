"""Stream frames: the frames of chat turns, so that a client can resume a stream.

``stream_frames`` holds each frame of a turn (``seq`` 1, 2, 3… is the frame's ``id``) and, with
``seq`` 0, a request to cancel the turn. Rows go with their message (ON DELETE CASCADE) and
are pruned some hours after their turn (``CONVSTORE_CHAT_FRAMES_RETENTION_HOURS``). On
PostgreSQL the table gets row-level security exactly as the other user-owned tables.

Downgrading drops the table: streams can no longer be resumed; messages are untouched.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 07:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import convstore.kit.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT = "user_id = NULLIF(current_setting('convstore.user_id', true), '')::uuid"


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.create_table(
        "stream_frames",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("frame", json, nullable=False),
        sa.Column("created_at", convstore.kit.types.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_stream_frames_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_stream_frames_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_frames")),
        sa.UniqueConstraint("message_id", "seq", name=op.f("uq_stream_frames_message_id_seq")),
    )
    op.create_index(
        op.f("ix_stream_frames_user_id_message_id_seq"),
        "stream_frames",
        ["user_id", "message_id", "seq"],
        unique=False,
    )
    op.create_index(
        op.f("ix_stream_frames_user_id_created_at"),
        "stream_frames",
        ["user_id", "created_at"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE stream_frames ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE stream_frames FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON stream_frames FOR ALL "
            f"USING ({TENANT}) WITH CHECK ({TENANT})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY IF EXISTS tenant_isolation ON stream_frames")
    op.drop_index(op.f("ix_stream_frames_user_id_created_at"), table_name="stream_frames")
    op.drop_index(op.f("ix_stream_frames_user_id_message_id_seq"), table_name="stream_frames")
    op.drop_table("stream_frames")
