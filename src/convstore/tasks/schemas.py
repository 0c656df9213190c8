"""Task input and output models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from convstore.kit.schemas import (
    IDSchema,
    ReadSchema,
    SafeText,
    Schema,
    TimestampedSchema,
    UTCDateTime,
    check_line,
)

TASK_TITLE_MAX_LENGTH = 200
TASK_DESCRIPTION_MAX_LENGTH = 1000
MAX_TAGS = 16
TAG_MAX_LENGTH = 32

TaskTitle = Annotated[
    str, Field(min_length=1, max_length=TASK_TITLE_MAX_LENGTH), AfterValidator(check_line)
]
TaskDescription = Annotated[SafeText, Field(max_length=TASK_DESCRIPTION_MAX_LENGTH)]
Priority = Literal["low", "medium", "high"]


def _normalize_tags(tags: list[str]) -> list[str]:
    """Tags are compared case-insensitively: stored lower-cased, without '#', deduplicated."""
    seen: dict[str, None] = {}
    for tag in tags:
        seen.setdefault(tag.lstrip("#").lower(), None)
    if "" in seen:
        raise ValueError("a tag must not be blank")
    return list(seen)


Tag = Annotated[
    str,
    Field(min_length=1, max_length=TAG_MAX_LENGTH, pattern=r"^#?[^\s,#]+$"),
    AfterValidator(check_line),
]
"""One word (an optional leading ``#``, no whitespace, comma or other ``#``), under the text rules
of every single-line field: no control characters, no lone surrogates."""
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_normalize_tags)]


class TaskCreate(Schema):
    title: TaskTitle
    description: TaskDescription | None = None
    priority: Priority = "medium"
    tags: Tags = []
    due_at: UTCDateTime | None = None


class TaskUpdate(Schema):
    """Every field optional; only the fields given change. ``None`` clears an optional field."""

    title: TaskTitle | None = None
    description: TaskDescription | None = None
    priority: Priority | None = None
    tags: Tags | None = None
    due_at: UTCDateTime | None = None
    completed: bool | None = None


class TaskFilter(Schema):
    """List filters; a tag matches case-insensitively, with or without its ``#``."""

    completed: bool | None = None
    priority: Priority | None = None
    tag: Annotated[Tag, AfterValidator(lambda t: t.lstrip("#").lower())] | None = None
    due_before: UTCDateTime | None = None


class TaskRead(IDSchema, TimestampedSchema):
    title: str
    description: str | None
    completed: bool
    completed_at: datetime | None
    priority: Priority
    tags: list[str]
    due_at: datetime | None


class TaskSource(Schema):
    """Where a change came from: the assistant's tool call in a conversation."""

    conversation_id: uuid.UUID
    message_id: uuid.UUID | None = None
    tool_call_id: str | None = None


class TaskEventRead(ReadSchema):
    id: uuid.UUID
    task_id: uuid.UUID
    action: Literal["created", "updated", "completed", "reopened", "deleted"]
    changes: dict[str, Any] | None
    conversation_id: uuid.UUID | None
    message_id: uuid.UUID | None
    tool_call_id: str | None
    created_at: datetime
