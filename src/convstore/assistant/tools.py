"""The task tools the assistant (builtin, OpenAI-compatible or MCP) works through.

Each tool has a Pydantic argument model; its JSON schema is what models see. Tools act only for
the user of the chat: they never take a user id, and a task id of another user is "not found".
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from convstore.kit.schemas import UTCDateTime
from convstore.tasks.schemas import Priority, Tag, TaskDescription, TaskTitle

TaskStatus = Literal["all", "pending", "done", "overdue"]


class ToolArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddTask(ToolArgs):
    """Add a task to the user's list."""

    title: TaskTitle
    description: TaskDescription | None = None
    due_at: UTCDateTime | None = Field(default=None, description="ISO 8601 with a time zone.")
    priority: Priority = "medium"
    tags: Annotated[list[Tag], Field(max_length=16)] = []


class ListTasks(ToolArgs):
    """List the user's tasks (in the order they were added)."""

    status: TaskStatus = "pending"
    tag: Tag | None = None
    priority: Priority | None = None


class TaskRef(ToolArgs):
    task_id: uuid.UUID = Field(description="The id of a task, as list_tasks returns it.")


class CompleteTask(TaskRef):
    """Mark a task done."""


class ReopenTask(TaskRef):
    """Mark a done task as not done."""


class DeleteTask(TaskRef):
    """Delete a task for good."""


class UpdateTask(TaskRef):
    """Change a task's title, description, due time, priority or tags (only the given ones)."""

    title: TaskTitle | None = None
    description: TaskDescription | None = None
    due_at: UTCDateTime | None = None
    priority: Priority | None = None
    tags: Annotated[list[Tag], Field(max_length=16)] | None = None


TOOLS: dict[str, type[ToolArgs]] = {
    "add_task": AddTask,
    "list_tasks": ListTasks,
    "complete_task": CompleteTask,
    "reopen_task": ReopenTask,
    "update_task": UpdateTask,
    "delete_task": DeleteTask,
}
"""Every tool by name."""


def tool_schemas() -> list[dict[str, Any]]:
    """The tools in the Chat Completions ``tools`` format."""
    return [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": (model.__doc__ or "").strip(),
                "parameters": model.model_json_schema(),
            },
        }
        for name, model in TOOLS.items()
    ]
