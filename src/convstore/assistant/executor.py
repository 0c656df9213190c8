"""Runs the assistant's tool calls against the acting user's tasks.

The user comes from the chat (never from the arguments), so a tool call cannot reach another
user's tasks: a foreign task id is simply "not found". Bad arguments are not an exception: the
outcome says what was wrong, so a model can correct itself on the next step.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.assistant.tools import (
    TOOLS,
    AddTask,
    CompleteTask,
    DeleteTask,
    ListTasks,
    ReopenTask,
    ToolArgs,
    UpdateTask,
)
from convstore.errors import ConvstoreError
from convstore.kit.jsoninput import JSONTooDeep, loads, nesting_exceeds
from convstore.kit.types import utc_now
from convstore.tasks.schemas import TaskCreate, TaskFilter, TaskSource, TaskUpdate
from convstore.tasks.service import task as task_service

MAX_LISTED = 100
"""``list_tasks`` returns at most this many tasks."""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What one tool call did: ``output`` is JSON (a task, a list of tasks, or an error)."""

    tool_call_id: str
    name: str
    ok: bool
    output: Any

    def as_result(self) -> dict[str, Any]:
        """The ``tool_results`` entry stored on the assistant message."""
        return {"tool_call_id": self.tool_call_id, "output": self.output, "is_error": not self.ok}


@dataclass(frozen=True, slots=True)
class ToolScope:
    """Who runs the tools, and where the changes they make come from."""

    user_id: uuid.UUID
    conversation_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None

    def source(self, tool_call_id: str) -> TaskSource | None:
        if self.conversation_id is None:
            return None
        return TaskSource(
            conversation_id=self.conversation_id,
            message_id=self.message_id,
            tool_call_id=tool_call_id,
        )


def parse_arguments(name: str, arguments: str | dict[str, Any]) -> ToolArgs:
    """Validate a tool call's arguments (a JSON object or its text) for tool ``name``.

    Raises:
        ValueError: unknown tool, or arguments that are not valid for it (the message says why).
    """
    model = TOOLS.get(name)
    if model is None:
        raise ValueError(f"unknown tool {name!r}; available: {', '.join(TOOLS)}")
    try:
        data = loads(arguments) if isinstance(arguments, str) else arguments
        if nesting_exceeds(data):
            raise JSONTooDeep("")
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ValueError(f"invalid arguments for {name}: {problems}") from None
    except JSONTooDeep as exc:
        raise ValueError(f"arguments for {name} are {exc.msg}") from None
    except json.JSONDecodeError:
        raise ValueError(f"arguments for {name} are not valid JSON") from None


async def execute(
    conn: AsyncConnection,
    scope: ToolScope,
    tool_call_id: str,
    name: str,
    arguments: str | dict[str, Any],
) -> ToolOutcome:
    """Run one tool call in the caller's transaction and describe the outcome."""
    try:
        args = parse_arguments(name, arguments)
        output = await _run(conn, scope, tool_call_id, args)
    except ValueError as exc:
        return ToolOutcome(tool_call_id, name, False, {"error": str(exc)})
    except ConvstoreError as exc:
        return ToolOutcome(tool_call_id, name, False, {"error": exc.message})
    return ToolOutcome(tool_call_id, name, True, output)


async def _run(conn: AsyncConnection, scope: ToolScope, call_id: str, args: ToolArgs) -> Any:
    user, source = scope.user_id, scope.source(call_id)
    if isinstance(args, AddTask):
        data = TaskCreate.model_validate(args.model_dump())
        return _dump(await task_service.create(conn, user, data, source))
    if isinstance(args, ListTasks):
        return await _list(conn, user, args)
    if isinstance(args, UpdateTask):
        changes = args.model_dump(exclude_unset=True, exclude={"task_id"})
        update = TaskUpdate.model_validate(changes)
        return _dump(await task_service.update(conn, user, args.task_id, update, source))
    if isinstance(args, CompleteTask | ReopenTask):
        done = isinstance(args, CompleteTask)
        return _dump(await task_service.set_completed(conn, user, args.task_id, done, source))
    assert isinstance(args, DeleteTask)
    return _dump(await task_service.delete(conn, user, args.task_id, source))


async def _list(conn: AsyncConnection, user: uuid.UUID, args: ListTasks) -> list[dict[str, Any]]:
    completed = {"all": None, "pending": False, "done": True, "overdue": False}[args.status]
    filters = TaskFilter(
        completed=completed,
        priority=args.priority,
        tag=args.tag,
        due_before=utc_now() if args.status == "overdue" else None,
    )
    page = await task_service.list(conn, user, filters, limit=MAX_LISTED, cursor=None)
    return [_dump(t) for t in page.items]


def _dump(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json")
    return dumped
