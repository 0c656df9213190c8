"""Every query on tasks, bound to the acting user."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.tasks.models import Task, TaskEvent
from convstore.tasks.schemas import TaskFilter

tasks = cast(Table, Task.__table__)
task_events = cast(Table, TaskEvent.__table__)
EVENT_COLUMNS = tuple(c for c in task_events.c if c.name != "user_id")
TASK_COLUMNS = tuple(c for c in tasks.c if c.name != "user_id")


class TaskRepository:
    """Tasks of one user."""

    def __init__(self, conn: AsyncConnection, user_id: uuid.UUID) -> None:
        self.conn = conn
        self.user_id = user_id

    def get_readable_statement(self) -> Select[Any]:
        return select(*TASK_COLUMNS).where(tasks.c.user_id == self.user_id)

    def _owned(self, task_id: uuid.UUID) -> ColumnElement[bool]:
        return and_(tasks.c.id == task_id, tasks.c.user_id == self.user_id)

    async def get(self, task_id: uuid.UUID) -> RowMapping | None:
        stmt = self.get_readable_statement().where(tasks.c.id == task_id)
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def insert(self, values: dict[str, Any]) -> RowMapping:
        stmt = insert(tasks).values(user_id=self.user_id, **values).returning(*TASK_COLUMNS)
        return (await self.conn.execute(stmt)).mappings().one()

    async def update(self, task_id: uuid.UUID, values: dict[str, Any]) -> RowMapping | None:
        stmt = update(tasks).where(self._owned(task_id)).values(**values).returning(*TASK_COLUMNS)
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def delete_returning(self, task_id: uuid.UUID) -> RowMapping | None:
        stmt = delete(tasks).where(self._owned(task_id)).returning(*TASK_COLUMNS)
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    def _has_tag(self, tag: str) -> ColumnElement[bool]:
        if self.conn.dialect.name == "postgresql":
            return tasks.c.tags.op("@>")(literal([tag], type_=JSONB))
        each = func.json_each(tasks.c.tags).table_valued("value")
        return select(each.c.value).where(each.c.value == tag).exists()

    async def list(
        self, filters: TaskFilter, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> Sequence[RowMapping]:
        """Up to ``limit`` tasks in the order they were created, strictly after ``after``."""
        t = tasks.c
        stmt = self.get_readable_statement()
        if filters.completed is not None:
            stmt = stmt.where(t.completed.is_(filters.completed))
        if filters.priority is not None:
            stmt = stmt.where(t.priority == filters.priority)
        if filters.tag is not None:
            stmt = stmt.where(self._has_tag(filters.tag))
        if filters.due_before is not None:
            stmt = stmt.where(t.due_at < filters.due_before)
        if after is not None:
            at, last_id = after
            stmt = stmt.where(or_(t.created_at > at, and_(t.created_at == at, t.id > last_id)))
        stmt = stmt.order_by(t.created_at.asc(), t.id.asc()).limit(limit)
        rows: Sequence[RowMapping] = (await self.conn.execute(stmt)).mappings().all()
        return rows

    async def insert_event(self, values: dict[str, Any]) -> None:
        await self.conn.execute(insert(task_events).values(user_id=self.user_id, **values))

    async def events(self, task_id: uuid.UUID, limit: int) -> Sequence[RowMapping]:
        """The task's changes, oldest first (also after the task was deleted)."""
        e = task_events.c
        stmt = (
            select(*EVENT_COLUMNS)
            .where(e.user_id == self.user_id, e.task_id == task_id)
            .order_by(e.created_at.asc(), e.id.asc())
            .limit(limit)
        )
        rows: Sequence[RowMapping] = (await self.conn.execute(stmt)).mappings().all()
        return rows
