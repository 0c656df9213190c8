"""The tasks table: a user's todo items, which the assistant manages through tools."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, String, Uuid, false
from sqlalchemy.orm import Mapped, mapped_column

from convstore.kit.base import RecordModel, UTCTimestampOrNone
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
