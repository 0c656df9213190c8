"""``/api/v1/tasks``: the signed-in user's todo tasks."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from convstore.http.deps import (
    API_PREFIX,
    CurrentUser,
    Cursor,
    IdempotencyDep,
    Limit,
    ReadConn,
    WriteConn,
)
from convstore.http.errors import CONFLICT_RESPONSES, ERROR_RESPONSES
from convstore.http.routing import ApiRoute
from convstore.kit.pagination import Page
from convstore.kit.schemas import UTCDateTime
from convstore.kit.validation import parse
from convstore.tasks.schemas import (
    Priority,
    TaskCreate,
    TaskEventRead,
    TaskFilter,
    TaskRead,
    TaskUpdate,
)
from convstore.tasks.service import task as task_service

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=ERROR_RESPONSES, route_class=ApiRoute)


@router.get("", summary="List tasks")
async def list_tasks(
    user: CurrentUser,
    conn: ReadConn,
    limit: Limit = 20,
    cursor: Cursor = None,
    completed: bool | None = None,
    priority: Priority | None = None,
    tag: str | None = None,
    due_before: UTCDateTime | None = None,
) -> Page[TaskRead]:
    """Your tasks in the order you created them, optionally filtered."""
    filters = parse(
        TaskFilter,
        {"completed": completed, "priority": priority, "tag": tag, "due_before": due_before},
    )
    return await task_service.list(conn, user.id, filters, limit=limit, cursor=cursor)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a task",
    responses=CONFLICT_RESPONSES,
)
async def create_task(
    body: TaskCreate,
    user: CurrentUser,
    conn: WriteConn,
    idem: IdempotencyDep,
    response: Response,
) -> TaskRead:
    """Add a task (title, optional description, priority, tags and due time)."""
    await idem.claim(conn, user.id, body)
    task = await task_service.create(conn, user.id, body)
    response.headers["Location"] = location = f"{API_PREFIX}/tasks/{task.id}"
    await idem.record(status.HTTP_201_CREATED, task, location)
    return task


@router.get("/{task_id}", summary="Get a task")
async def get_task(task_id: uuid.UUID, user: CurrentUser, conn: ReadConn) -> TaskRead:
    """One of your tasks."""
    return await task_service.get(conn, user.id, task_id)


@router.patch("/{task_id}", summary="Update a task")
async def update_task(
    task_id: uuid.UUID, body: TaskUpdate, user: CurrentUser, conn: WriteConn
) -> TaskRead:
    """Change the given fields; null clears the description or the due time."""
    return await task_service.update(conn, user.id, task_id, body)


@router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a task")
async def delete_task(task_id: uuid.UUID, user: CurrentUser, conn: WriteConn) -> None:
    """Delete for good."""
    await task_service.delete(conn, user.id, task_id)


@router.post("/{task_id}/complete", summary="Mark a task done")
async def complete_task(task_id: uuid.UUID, user: CurrentUser, conn: WriteConn) -> TaskRead:
    """Mark done (a done task keeps its first completion time)."""
    return await task_service.set_completed(conn, user.id, task_id, True)


@router.post("/{task_id}/reopen", summary="Reopen a task")
async def reopen_task(task_id: uuid.UUID, user: CurrentUser, conn: WriteConn) -> TaskRead:
    """Mark not done."""
    return await task_service.set_completed(conn, user.id, task_id, False)


@router.get("/{task_id}/events", summary="A task's history")
async def task_events(task_id: uuid.UUID, user: CurrentUser, conn: ReadConn) -> list[TaskEventRead]:
    """Every change of the task, oldest first; changes made by the assistant name the
    conversation, message and tool call. Kept after the task is deleted."""
    return await task_service.events(conn, user.id, task_id)
