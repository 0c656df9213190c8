"""The rules for tasks. ``completed_at`` always follows ``completed``."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.errors import InvalidInput, NotFound
from convstore.kit.pagination import Page, decode_keyset, encode_keyset
from convstore.kit.types import utc_now, uuid7
from convstore.tasks.repository import TaskRepository
from convstore.tasks.schemas import (
    TaskCreate,
    TaskEventRead,
    TaskFilter,
    TaskRead,
    TaskSource,
    TaskUpdate,
)

MAX_EVENTS = 1_000
"""The most events one history call returns."""


def _not_found() -> NotFound:
    return NotFound("task not found")


async def _record(
    repo: TaskRepository,
    task_id: uuid.UUID,
    action: str,
    changes: dict[str, Any] | None,
    source: TaskSource | None,
) -> None:
    """Log one change of a task, in the transaction that made it."""
    origin = source.model_dump() if source is not None else {}
    await repo.insert_event(
        {
            "id": uuid7(),
            "task_id": task_id,
            "action": action,
            "changes": changes,
            "created_at": utc_now(),
            **origin,
        }
    )


class TaskService:
    """Task rules. Every change is recorded as a task event; ``source`` names the assistant's
    conversation, message and tool call when the change came from a tool."""

    async def create(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        data: TaskCreate,
        source: TaskSource | None = None,
    ) -> TaskRead:
        now = utc_now()
        repo = TaskRepository(conn, user_id)
        row = await repo.insert(
            {
                "id": uuid7(),
                **data.model_dump(),
                "completed": False,
                "created_at": now,
                "updated_at": now,
            }
        )
        created = TaskRead.model_validate(row)
        await _record(repo, created.id, "created", data.model_dump(mode="json"), source)
        return created

    async def events(
        self, conn: AsyncConnection, user_id: uuid.UUID, task_id: uuid.UUID
    ) -> list[TaskEventRead]:
        """The task's changes, oldest first; still there after the task was deleted."""
        rows = await TaskRepository(conn, user_id).events(task_id, MAX_EVENTS)
        if not rows:
            raise _not_found()
        return [TaskEventRead.model_validate(r) for r in rows]

    async def get(self, conn: AsyncConnection, user_id: uuid.UUID, task_id: uuid.UUID) -> TaskRead:
        row = await TaskRepository(conn, user_id).get(task_id)
        if row is None:
            raise _not_found()
        return TaskRead.model_validate(row)

    async def list(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        filters: TaskFilter,
        *,
        limit: int,
        cursor: str | None,
    ) -> Page[TaskRead]:
        """Tasks in the order they were created (oldest first), keyset-paged.

        A cursor only continues the list it came from: with other filters it is refused.
        """
        digest = hashlib.sha256(filters.model_dump_json().encode()).hexdigest()[:16]
        scope = f"tasks:{digest}"
        after = decode_keyset(cursor, scope) if cursor is not None else None
        rows = await TaskRepository(conn, user_id).list(filters, limit=limit + 1, after=after)
        items = [TaskRead.model_validate(r) for r in rows[:limit]]
        has_more = len(rows) > limit
        next_cursor = None
        if has_more:
            last = items[-1]
            next_cursor = encode_keyset(scope, last.created_at, last.id)
        return Page(items=items, next_cursor=next_cursor, has_more=has_more)

    async def update(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        task_id: uuid.UUID,
        data: TaskUpdate,
        source: TaskSource | None = None,
    ) -> TaskRead:
        changes = data.model_dump(exclude_unset=True)
        for name in ("title", "priority", "tags", "completed"):
            if name in changes and changes[name] is None:
                raise InvalidInput("must not be null", field=name)
        if not changes:
            return await self.get(conn, user_id, task_id)
        now = utc_now()
        values: dict[str, Any] = {**changes, "updated_at": now}
        repo = TaskRepository(conn, user_id)
        if "completed" in changes:
            # Like set_completed: only a change of state moves completed_at.
            current = await repo.get(task_id)
            if current is None:
                raise _not_found()
            if current["completed"] != changes["completed"]:
                values["completed_at"] = now if changes["completed"] else None
        row = await repo.update(task_id, values)
        if row is None:
            raise _not_found()
        await _record(
            repo, task_id, "updated", data.model_dump(mode="json", exclude_unset=True), source
        )
        return TaskRead.model_validate(row)

    async def set_completed(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        task_id: uuid.UUID,
        completed: bool,
        source: TaskSource | None = None,
    ) -> TaskRead:
        """Complete or reopen. Completing a completed task keeps its first ``completed_at``."""
        repo = TaskRepository(conn, user_id)
        current = await repo.get(task_id)
        if current is None:
            raise _not_found()
        if current["completed"] == completed:
            return TaskRead.model_validate(current)
        now = utc_now()
        row = await repo.update(
            task_id,
            {"completed": completed, "completed_at": now if completed else None, "updated_at": now},
        )
        if row is None:
            raise _not_found()
        await _record(repo, task_id, "completed" if completed else "reopened", None, source)
        return TaskRead.model_validate(row)

    async def delete(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        task_id: uuid.UUID,
        source: TaskSource | None = None,
    ) -> TaskRead:
        """Delete for good; returns the task as it was (the event log keeps the deletion)."""
        repo = TaskRepository(conn, user_id)
        row = await repo.delete_returning(task_id)
        if row is None:
            raise _not_found()
        await _record(repo, task_id, "deleted", None, source)
        return TaskRead.model_validate(row)


task = TaskService()
