"""The data the builtin planner works on and produces: plain frozen dataclasses, no I/O.

The chat turn builds a :class:`Context` from the user's tasks, calls ``plan()``, runs the
:class:`Call` objects of the :class:`Plan` through the task tools, wraps each result in an
:class:`Outcome` and hands them to ``reply()`` for the sentence the user sees.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any


@dataclass(frozen=True)
class TaskView:
    """What the planner knows about one task."""

    id: uuid.UUID
    title: str
    completed: bool
    priority: str
    tags: tuple[str, ...]
    due_at: datetime | None


@dataclass(frozen=True)
class Context:
    """Everything ``plan()`` and ``reply()`` may look at besides the utterance.

    Attributes:
        tasks: All the user's tasks in creation order, pending and done.
        last_listing: Ids in the order of the last list shown ("2", "the second one").
        last_task: What "it"/"that" refers to: the task last added, changed or mentioned.
        now: The current instant (aware).
        tz: The user's zone, for "today", "friday" and "5pm".
    """

    tasks: tuple[TaskView, ...]
    last_listing: tuple[uuid.UUID, ...]
    last_task: uuid.UUID | None
    now: datetime
    tz: tzinfo

    @property
    def local_now(self) -> datetime:
        """``now`` in the user's zone."""
        return self.now.astimezone(self.tz)

    @property
    def today(self) -> date:
        """The user's calendar day."""
        return self.local_now.date()

    def task(self, task_id: uuid.UUID | None) -> TaskView | None:
        """The task with this id, or ``None`` (unknown id or ``None``)."""
        return next((t for t in self.tasks if t.id == task_id), None)

    def pending(self) -> tuple[TaskView, ...]:
        """The tasks not done yet, in creation order."""
        return tuple(t for t in self.tasks if not t.completed)

    def known_tags(self) -> set[str]:
        """Every tag used by any task."""
        return {tag for t in self.tasks for tag in t.tags}


@dataclass(frozen=True)
class Call:
    """One tool call.

    Attributes:
        name: One of the six tool names of ``convstore.assistant.tools.TOOLS``.
        arguments: JSON-ready arguments valid for ``TOOLS[name]``: uuids as strings,
            datetimes as ISO 8601 strings with an offset.
    """

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """What to do about one utterance: exactly one of calls, a question or a text.

    Attributes:
        calls: Tool calls to run in order.
        question: Set when the utterance is ambiguous: ask it back and run nothing.
        text: A direct answer that needs no tool (help, greetings, thanks, not understood).
    """

    calls: tuple[Call, ...] = ()
    question: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The result of running one :class:`Call`.

    Attributes:
        call: The call that ran.
        ok: Whether the tool succeeded.
        result: The task (``TaskRead.model_dump(mode="json")``), or the list of tasks for
            ``list_tasks``; may be ``None`` (e.g. for a delete).
        error: The tool's error message when ``ok`` is false, e.g. "task not found".
    """

    call: Call
    ok: bool
    result: dict[str, Any] | list[dict[str, Any]] | None
    error: str | None = None


def ask(question: str) -> Plan:
    """A plan that asks back and runs nothing."""
    return Plan(question=question)


def say(text: str) -> Plan:
    """A plan that answers with text and runs no tool."""
    return Plan(text=text)
