"""Items: a message row also keeps an OpenAI Responses item as given; conversations get a key.

``messages.item_type``, ``item_id`` and ``item`` hold an item appended as such (a
``function_call``, a ``reasoning`` item, a ``message`` with content parts…); rows written
before this revision are native messages (``item_type`` NULL) and are read as items by
derivation, so nothing is rewritten. ``conversations.key`` is an application's own name for a
conversation (an Agents SDK or LangChain ``session_id``), unique among a user's live ones.

Downgrading drops the three item columns and the key: item rows stay as the native messages
they also are (role, text content, tool calls), and what only the item held (reasoning,
encrypted content, content parts other than text) is gone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 00:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYED = sa.text("key IS NOT NULL AND deleted_at IS NULL")
IDENTIFIED = sa.text("item_id IS NOT NULL AND deleted_at IS NULL")


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.add_column("conversations", sa.Column("key", sa.String(length=255), nullable=True))
    op.create_index(
        "ix_conversations_user_id_key",
        "conversations",
        ["user_id", "key"],
        unique=True,
        postgresql_where=KEYED,
        sqlite_where=KEYED,
    )
    op.add_column("messages", sa.Column("item_type", sa.String(length=64), nullable=True))
    op.add_column("messages", sa.Column("item_id", sa.String(length=255), nullable=True))
    op.add_column("messages", sa.Column("item", json, nullable=True))
    op.create_index(
        "ix_messages_conversation_id_item_id",
        "messages",
        ["conversation_id", "item_id"],
        unique=True,
        postgresql_where=IDENTIFIED,
        sqlite_where=IDENTIFIED,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_conversation_id_item_id", table_name="messages")
    op.drop_column("messages", "item")
    op.drop_column("messages", "item_id")
    op.drop_column("messages", "item_type")
    op.drop_index("ix_conversations_user_id_key", table_name="conversations")
    op.drop_column("conversations", "key")
