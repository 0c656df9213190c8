"""Every query on tasks, bound to the acting user."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.db import DriverStatement
from convstore.tasks.models import Task, TaskEvent
from convstore.tasks.schemas import TaskFilter

tasks = cast(Table, Task.__table__)
task_events = cast(Table, TaskEvent.__table__)
EVENT_COLUMNS = tuple(c for c in task_events.c if c.name != "user_id")
TASK_COLUMNS = tuple(c for c in tasks.c if c.name != "user_id")


@cache
def _list_query(
    dialect: str, completed: bool, priority: bool, tag: bool, due: bool, paged: bool
) -> DriverStatement:
    """The task list for one combination of filters, built once (see ``DriverStatement``).

    ``completed = :completed`` (not ``IS``) lets PostgreSQL walk the (user_id, completed,
    created_at, id) index in order and stop at ``limit``.
    """
    t = tasks.c
    stmt = select(*TASK_COLUMNS).where(t.user_id == bindparam("user_id"))
    if completed:
        stmt = stmt.where(t.completed == bindparam("completed"))
    if priority:
        stmt = stmt.where(t.priority == bindparam("priority"))
    if tag:
        if dialect == "postgresql":
            stmt = stmt.where(t.tags.op("@>")(bindparam("tag_list", type_=JSONB)))
        else:
            each = func.json_each(t.tags).table_valued("value")
            stmt = stmt.where(select(each.c.value).where(each.c.value == bindparam("tag")).exists())
    if due:
        stmt = stmt.where(t.due_at < bindparam("due_before", type_=t.due_at.type))
    if paged:
        at = bindparam("at", type_=t.created_at.type)
        last_id = bindparam("last_id", type_=t.id.type)
        stmt = stmt.where(or_(t.created_at > at, and_(t.created_at == at, t.id > last_id)))
    stmt = stmt.order_by(t.created_at.asc(), t.id.asc()).limit(bindparam("limit"))
    return DriverStatement(stmt)


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

    async def list(
        self, filters: TaskFilter, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Mapping[str, Any]]:
        """Up to ``limit`` tasks in the order they were created, strictly after ``after``."""
        query = _list_query(
            self.conn.dialect.name,
            filters.completed is not None,
            filters.priority is not None,
            filters.tag is not None,
            filters.due_before is not None,
            after is not None,
        )
        params: dict[str, Any] = {
            "user_id": self.user_id,
            "completed": filters.completed,
            "priority": filters.priority,
            "tag": filters.tag,
            "tag_list": [filters.tag],
            "due_before": filters.due_before,
            "limit": limit,
        }
        if after is not None:
            params["at"], params["last_id"] = after
        return await query.fetch(self.conn, params)

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
