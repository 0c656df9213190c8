"""The tasks table: a user's todo items, which the assistant manages through tools."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Uuid, false
from sqlalchemy.orm import Mapped, mapped_column

from convstore.kit.base import Base, RecordModel, UTCTimestamp, UTCTimestampOrNone, UUIDPk
from convstore.kit.types import DateTimeUTC, JSONType

TASK_PRIORITIES = ("low", "medium", "high")


class Task(RecordModel):
    """A todo item owned by one user. ``completed_at`` is set exactly when ``completed`` is."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("priority IN ('low', 'medium', 'high')", name="priority"),
        CheckConstraint("length(trim(title)) BETWEEN 1 AND 200", name="title_length"),
        Index(None, "user_id", "completed", "created_at", "id"),
        Index(None, "user_id", "created_at", "id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    completed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    completed_at: Mapped[UTCTimestampOrNone]
    priority: Mapped[str] = mapped_column(String(8), default="medium", server_default="medium")
    tags: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    due_at: Mapped[datetime | None] = mapped_column(DateTimeUTC)


TASK_ACTIONS = ("created", "updated", "completed", "reopened", "deleted")


class TaskEvent(Base):
    """One change of a task, with where it came from.

    Changes made by the assistant carry the conversation, the assistant message and the tool
    call that made them, so a client can show "changed by the assistant in message X". Events
    outlive their task (a deletion is an event too) and go with their user.
    """

    __tablename__ = "task_events"
    __table_args__ = (
        CheckConstraint(
            "action IN ('created', 'updated', 'completed', 'reopened', 'deleted')", name="action"
        ),
        Index(None, "user_id", "task_id", "created_at"),
        Index(None, "user_id", "conversation_id"),
    )

    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    task_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(16))
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    tool_call_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[UTCTimestamp]
