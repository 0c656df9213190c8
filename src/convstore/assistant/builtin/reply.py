"""``reply()``: what happened, in plain English, from a :class:`Plan` and its outcomes.

Rules: a question or text of the plan is said as is. Consecutive successful adds, completions,
reopenings and deletions are told in one sentence ("Added 3 tasks: “Milk”, “Eggs” and
“Bread”."), and so are updates making the same change; other updates, lists and failures get a
sentence each. Dates are relative ("today", "tomorrow", a weekday within the coming week, else
"Dec 3"), with the calendar day after "tomorrow" or a weekday when confirming a change ("due
tomorrow (Tue 24 Nov)"), and the time unless it is 23:59. A list is numbered in the order of
the tasks returned, which is the order the caller must store as ``Context.last_listing``:
"1. Buy milk (due tomorrow, high) #home". A "not found" error reads "I couldn't find that
task."
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from convstore.assistant.builtin.context import Context, Outcome, Plan
from convstore.assistant.builtin.dates import describe
from convstore.assistant.builtin.text import join_and, quoted

VERBS = {
    "add_task": "add",
    "list_tasks": "list your tasks",
    "complete_task": "complete",
    "reopen_task": "reopen",
    "update_task": "update",
    "delete_task": "delete",
}
STATUS_WORDS = {"pending": "pending", "done": "completed", "overdue": "overdue", "all": ""}
GROUPED = {
    "complete_task": ("Marked {} as done.", "Marked {} as done."),
    "reopen_task": ("Reopened {}: it's no longer marked as done.", "Reopened {}."),
    "delete_task": ("Deleted {}.", "Deleted {n} tasks: {}."),
}


def _record(outcome: Outcome) -> dict[str, Any]:
    return outcome.result if isinstance(outcome.result, dict) else {}


def _datetime(value: object) -> datetime | None:
    """An aware datetime from a result field (ISO text or datetime; naive means UTC)."""
    if isinstance(value, str) and value:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def title_of(outcome: Outcome, ctx: Context) -> str | None:
    """The title of the task an outcome is about: from the result, the context or the call."""
    if title := _record(outcome).get("title"):
        return str(title)
    task_id = outcome.call.arguments.get("task_id")
    task = next((t for t in ctx.tasks if str(t.id) == str(task_id)), None)
    if task is not None:
        return task.title
    title = outcome.call.arguments.get("title")
    return str(title) if title else None


def details(
    task: dict[str, Any], ctx: Context, *, long: bool = False, done: bool = False
) -> list[str]:
    """The notes shown after a title: due date, overdue, priority (unless medium), and with
    ``done`` "done" for a completed task. ``long``: "due tomorrow (Tue 24 Nov)", "high
    priority" (for confirmations) instead of "due tomorrow", "high" (for lists)."""
    notes = []
    due = _datetime(task.get("due_at"))
    if due is not None:
        notes.append(f"due {describe(due, ctx.local_now, long=long)}")
        if due < ctx.now and not task.get("completed"):
            notes.append("overdue")
    if task.get("priority") in {"high", "low"}:
        notes.append(str(task["priority"]) + (" priority" if long else ""))
    if done and task.get("completed"):
        notes.append("done")
    return notes


def _tags(task: dict[str, Any]) -> str:
    return " ".join(f"#{tag}" for tag in task.get("tags") or ())


def with_notes(title: str, notes: Sequence[str]) -> str:
    """``title (note, note)``, or the title alone."""
    return f"{title} ({', '.join(notes)})" if notes else title


def line(number: int, task: dict[str, Any], ctx: Context, *, done: bool = False) -> str:
    """One numbered list line: ``1. Buy milk (due tomorrow, high) #home``."""
    text = with_notes(f"{number}. {task.get('title', '')}", details(task, ctx, done=done))
    return f"{text} {_tags(task)}".rstrip()


def _phrase(arguments: dict[str, Any], count: int) -> str:
    status = str(arguments.get("status") or "pending")
    words = [f"{arguments['priority']}-priority"] if arguments.get("priority") else []
    words += [STATUS_WORDS.get(status, "")] if STATUS_WORDS.get(status) else []
    noun = "task" if count == 1 else "tasks"
    tag = f" tagged #{arguments['tag']}" if arguments.get("tag") else ""
    return " ".join([*words, noun]) + tag


def listed(outcome: Outcome, ctx: Context) -> str:
    """The reply to ``list_tasks``: a count sentence and the numbered tasks."""
    items = outcome.result if isinstance(outcome.result, list) else []
    arguments = outcome.call.arguments
    if not items:
        return f"You have no {_phrase(arguments, 0)}."
    header = f"You have {len(items)} {_phrase(arguments, len(items))}"
    if arguments.get("status") == "all":
        done = sum(1 for item in items if item.get("completed"))
        header += f" ({len(items) - done} pending, {done} done)"
    everything = arguments.get("status") == "all"
    lines = [line(i, item, ctx, done=everything) for i, item in enumerate(items, 1)]
    return "\n".join([f"{header}:", *lines])


def _changes(keys: Sequence[str], task: dict[str, Any], ctx: Context) -> list[str]:
    notes = []
    if "due_at" in keys:
        due = _datetime(task.get("due_at"))
        notes.append(f"due {describe(due, ctx.local_now, long=True)}" if due else "undated")
    if "priority" in keys:
        notes.append(f"{task.get('priority')} priority")
    if "tags" in keys:
        notes.append(f"tagged {_tags(task)}" if task.get("tags") else "untagged")
    return notes


def _renamed(arguments: dict[str, Any], ctx: Context) -> str:
    old = next((t.title for t in ctx.tasks if str(t.id) == str(arguments["task_id"])), None)
    before = quoted(old) if old and old != arguments["title"] else "it"
    return f"Renamed {before} to {quoted(str(arguments['title']))}."


def updated(outcome: Outcome, ctx: Context) -> str:
    """The reply to ``update_task``: what changed."""
    arguments, task = outcome.call.arguments, _record(outcome) or outcome.call.arguments
    keys = [key for key in ("title", "due_at", "priority", "tags") if key in arguments]
    if keys == ["title"]:
        return _renamed(arguments, ctx)
    title = quoted(title_of(outcome, ctx) or "that task")
    notes = _changes(keys, task, ctx)
    if notes == ["undated"]:
        return f"{title} no longer has a due date."
    if len(notes) == 1:
        return f"{title} is now {notes[0]}."
    return f"Updated {title}: {', '.join(notes)}." if notes else f"Updated {title}."


def _error(outcome: Outcome) -> str:
    return outcome.error or "something went wrong"


def failed(outcomes: Sequence[Outcome], ctx: Context) -> str:
    """The reply to calls of one kind that failed with the same error."""
    error, name = _error(outcomes[0]), outcomes[0].call.name
    if "not found" in error.lower():
        return (
            "I couldn't find that task." if len(outcomes) == 1 else "I couldn't find those tasks."
        )
    titles = [title_of(o, ctx) for o in outcomes] if name != "list_tasks" else []
    what = join_and([quoted(t) for t in titles if t])
    return f"I couldn't {VERBS.get(name, 'do that')}{' ' + what if what else ''}: {error}."


def _task(outcome: Outcome) -> dict[str, Any]:
    """The task after the call: the tool's result, else what the call asked for."""
    return _record(outcome) or outcome.call.arguments


def _confirmation_notes(task: dict[str, Any], ctx: Context) -> list[str]:
    tags = [f"tagged {_tags(task)}"] if task.get("tags") else []
    return details(task, ctx, long=True) + tags


def added(outcomes: Sequence[Outcome], ctx: Context) -> str:
    """The reply to successful ``add_task`` calls: "Added “Buy milk”, due tomorrow (…)."."""
    titles = [quoted(title_of(o, ctx) or "a task") for o in outcomes]
    notes = [_confirmation_notes(_task(o), ctx) for o in outcomes]
    if len(outcomes) == 1:
        return f"Added {titles[0]}{''.join(', ' + n for n in notes[0])}."
    if notes[0] and all(n == notes[0] for n in notes):
        return f"Added {len(outcomes)} tasks, all {', '.join(notes[0])}: {join_and(titles)}."
    items = [with_notes(t, details(_task(o), ctx)) for t, o in zip(titles, outcomes, strict=True)]
    return f"Added {len(outcomes)} tasks: {join_and(items)}."


def grouped(outcomes: Sequence[Outcome], ctx: Context) -> str:
    """One sentence for successful completions, reopenings or deletions."""
    one, many = GROUPED[outcomes[0].call.name]
    items = join_and([quoted(title_of(o, ctx) or "that task") for o in outcomes])
    return (one if len(outcomes) == 1 else many).format(items, n=len(outcomes))


def updated_all(outcomes: Sequence[Outcome], ctx: Context) -> list[str]:
    """Updates: one sentence when several tasks got the same single change ("“A” and “B” are
    now high priority."), else one per task."""
    changes = {
        tuple(_changes([k for k in o.call.arguments if k != "task_id"], _task(o), ctx))
        for o in outcomes
    }
    if len(outcomes) > 1 and len(changes) == 1 and len(note := changes.pop()) == 1:
        if note[0] not in {"undated", "untagged"}:
            titles = join_and([quoted(title_of(o, ctx) or "that task") for o in outcomes])
            return [f"{titles} are now {note[0]}."]
    return [updated(o, ctx) for o in outcomes]


def _sentence(outcomes: Sequence[Outcome], ctx: Context) -> list[str]:
    first = outcomes[0]
    if not first.ok:
        return [failed(list(same), ctx) for _, same in groupby(outcomes, key=_error)]
    if first.call.name == "add_task":
        return [added(outcomes, ctx)]
    if first.call.name in GROUPED:
        return [grouped(outcomes, ctx)]
    if first.call.name == "list_tasks":
        return [listed(o, ctx) for o in outcomes]
    return updated_all(outcomes, ctx)


def reply(plan: Plan, outcomes: Sequence[Outcome], ctx: Context) -> str:
    """What to tell the user after running ``plan`` (deterministic, no I/O).

    Args:
        plan: The plan from ``plan()``.
        outcomes: One outcome per call that ran, in order.
        ctx: The context the plan was made with (titles of tasks, the clock, the zone).

    Returns:
        Natural English sentence(s); a numbered list for ``list_tasks``.
    """
    if plan.question:
        return plan.question
    if plan.text:
        return plan.text
    if not outcomes:
        return "There was nothing to do."
    parts: list[str] = []
    for _, group in groupby(outcomes, key=lambda o: (o.call.name, o.ok)):
        parts += _sentence(list(group), ctx)
    return ("\n" if any("\n" in p for p in parts) else " ").join(parts)
