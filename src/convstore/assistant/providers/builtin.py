"""The ``builtin`` provider: the offline, deterministic task assistant.

It reads the user's last message, plans tool calls with :mod:`convstore.assistant.builtin`
(which knows the user's tasks, the last list it showed and the task "it" refers to, all taken
from the stored conversation), runs them through the same tools any model would use, and
answers in plain sentences, streamed a few words at a time.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncGenerator, Iterator
from typing import Any

from convstore.assistant.builtin import Context, Outcome, TaskView, plan, reply
from convstore.assistant.protocol import AssistantEvent, TextDelta, ToolRunner, Turn, Usage
from convstore.conversations.schemas import MessageRead
from convstore.tasks.schemas import TaskFilter
from convstore.tasks.service import task as task_service

MAX_KNOWN_TASKS = 1_000
"""The planner matches titles among at most this many of the user's tasks."""
TASK_ACTIONS = ("add_task", "complete_task", "reopen_task", "update_task", "delete_task")


class BuiltinAssistant:
    """Plans with rules, acts through the task tools, replies in sentences."""

    name = "builtin"

    async def run(self, turn: Turn, tools: ToolRunner) -> AsyncGenerator[AssistantEvent, None]:
        last = turn.history[-1] if turn.history else None
        utterance = last.content if last is not None and last.role == "user" else ""
        ctx = await self._context(turn, tools)
        steps = plan(utterance, ctx)
        outcomes = []
        for call in steps.calls:
            done = None
            async for step in tools.stream(call.name, call.arguments):
                yield step
                done = step.outcome
            assert done is not None
            error = None if done.ok else str(done.output.get("error", "failed"))
            outcomes.append(Outcome(call, done.ok, done.output if done.ok else None, error))
        text = reply(steps, outcomes, ctx)
        for piece in _pieces(text):
            yield TextDelta(piece)
        yield Usage(
            {
                "model": "builtin",
                "tool_calls": len(steps.calls),
                "input_chars": len(utterance),
                "output_chars": len(text),
            }
        )

    async def _context(self, turn: Turn, tools: ToolRunner) -> Context:
        async with tools.reading() as conn:
            page = await task_service.list(conn, turn.user_id, TaskFilter(), limit=100, cursor=None)
            tasks = list(page.items)
            while page.has_more and len(tasks) < MAX_KNOWN_TASKS:
                page = await task_service.list(
                    conn, turn.user_id, TaskFilter(), limit=100, cursor=page.next_cursor
                )
                tasks.extend(page.items)
        views = tuple(
            TaskView(t.id, t.title, t.completed, t.priority, tuple(t.tags), t.due_at) for t in tasks
        )
        listing, last_task = _references(turn.history)
        return Context(views, listing, last_task, turn.now, turn.tz)


def _references(history: list[MessageRead]) -> tuple[tuple[uuid.UUID, ...], uuid.UUID | None]:
    """The ids of the last list shown and the task last acted on, from stored tool results."""
    listing: tuple[uuid.UUID, ...] = ()
    last_task: uuid.UUID | None = None
    for msg in history:
        names = {c.id: c.name for c in msg.tool_calls or ()}
        for result in msg.tool_results or ():
            name = names.get(result.tool_call_id)
            if result.is_error or name is None:
                continue
            if name == "list_tasks" and isinstance(result.output, list):
                listing = tuple(_ids(result.output))
            elif name in TASK_ACTIONS and isinstance(result.output, dict):
                found = _ids([result.output])
                last_task = found[0] if found else last_task
    return listing, last_task


def _ids(items: list[Any]) -> list[uuid.UUID]:
    found = []
    for item in items:
        try:
            found.append(uuid.UUID(str(item["id"])))
        except (KeyError, TypeError, ValueError):
            continue
    return found


def _pieces(text: str) -> Iterator[str]:
    """The reply in chunks of about three words, as a model would stream it."""
    words = re.findall(r"\S+\s*", text)
    for start in range(0, len(words), 3):
        yield "".join(words[start : start + 3])
