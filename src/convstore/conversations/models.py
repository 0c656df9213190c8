"""Conversations and their messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from convstore.kit.base import RecordModel, UTCTimestampOrNone
from convstore.kit.types import DateTimeUTC, JSONType

MESSAGE_ROLES = ("user", "assistant", "system", "tool")
MESSAGE_STATUSES = ("sent", "streaming", "complete", "error")

_LIVE = text("deleted_at IS NULL")
_KEYED = text("key IS NOT NULL AND deleted_at IS NULL")
_IDENTIFIED = text("item_id IS NOT NULL AND deleted_at IS NULL")


class Conversation(RecordModel):
    """A chat between one user and the assistant.

    ``messages_count`` is the number of messages ever appended and doubles as the sequence
    counter: an append bumps it and uses the new value as the message's ``seq``, in the same
    transaction. ``updated_at`` is the last activity (a message, a rename, a restore), which
    orders a user's conversation list (newest first: the index is read backwards).
    ``deleted_at`` marks a soft delete: the conversation and every message in it are hidden
    until restored or purged. ``key`` is the application's own name for it (an Agents SDK or
    LangChain ``session_id``): unique among the user's live conversations.
    """

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("id", "user_id"),
        CheckConstraint("messages_count >= 0", name="messages_count"),
        Index(
            "ix_conversations_user_id_recent",
            "user_id",
            "updated_at",
            "id",
            postgresql_where=_LIVE,
            sqlite_where=_LIVE,
        ),
        Index(None, "user_id", "deleted_at"),
        Index(
            "ix_conversations_user_id_key",
            "user_id",
            "key",
            unique=True,
            postgresql_where=_KEYED,
            sqlite_where=_KEYED,
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str | None] = mapped_column(String(255))
    key: Mapped[str | None] = mapped_column(String(255))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    messages_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_message_at: Mapped[datetime | None] = mapped_column(DateTimeUTC)
    deleted_at: Mapped[UTCTimestampOrNone]


class Message(RecordModel):
    """One message of a conversation, in position ``seq`` (1, 2, 3… without gaps).

    ``(conversation_id, user_id)`` references ``conversations (id, user_id)``: the database
    refuses a message whose user does not own its conversation. Tool calls live on assistant
    messages; a ``tool`` message answers one of them through ``tool_call_id``.

    A row is also an *item* (docs/schema.md, "Items"): a row appended as an OpenAI Responses
    item keeps it in ``item`` exactly as given, with its type in ``item_type`` and its id (given
    or assigned) in ``item_id``, unique among the conversation's live items; the native columns
    then hold its native reading (role, text content, tool calls). A native row (``item_type``
    NULL) is read as items by derivation.
    """

    __tablename__ = "messages"
    __table_args__ = (
        ForeignKeyConstraint(
            ["conversation_id", "user_id"],
            ["conversations.id", "conversations.user_id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("conversation_id", "seq"),
        UniqueConstraint("conversation_id", "tool_call_id"),
        CheckConstraint("role IN ('user', 'assistant', 'system', 'tool')", name="role"),
        CheckConstraint("status IN ('sent', 'streaming', 'complete', 'error')", name="status"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        Index(
            None,
            "parent_id",
            postgresql_where=text("parent_id IS NOT NULL"),
            sqlite_where=text("parent_id IS NOT NULL"),
        ),
        Index(
            "ix_messages_conversation_id_item_id",
            "conversation_id",
            "item_id",
            unique=True,
            postgresql_where=_IDENTIFIED,
            sqlite_where=_IDENTIFIED,
        ),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    # Payload columns are JSON documents of bounded size (see Limits), read with the message.
    tool_calls: Mapped[list[Any] | None] = mapped_column(JSONType)
    tool_results: Mapped[list[Any] | None] = mapped_column(JSONType)
    tool_call_id: Mapped[str | None] = mapped_column(String(128))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("messages.id", ondelete="SET NULL")
    )
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    item_type: Mapped[str | None] = mapped_column(String(64))
    item_id: Mapped[str | None] = mapped_column(String(255))
    item: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    deleted_at: Mapped[UTCTimestampOrNone]
