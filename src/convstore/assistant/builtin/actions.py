"""Plans for each kind of request, once the utterance has been taken apart.

Rules beyond :mod:`.refs` and :mod:`.parse`:

- Completing a task that is already done, or reopening one that is not done, is answered with
  a text and no call (only when a single task is named).
- A new due date without a time keeps the task's current time of day when it has one other
  than 23:59 ("move dentist to friday" keeps 17:00); a time without a day keeps the task's day.
- Tagging adds to the task's tags (``update_task`` replaces the list, so the full list is sent);
  untagging removes from them.
- "clear completed" deletes every done task, oldest first.
- "remove the due date of 2" sends ``due_at: null`` (the tool changes only the fields given).
- One message adds at most 16 tasks; a longer list is answered with a text.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import time, timedelta
from typing import Any

from convstore.assistant.builtin import messages
from convstore.assistant.builtin.context import Call, Context, Plan, TaskView, ask, say
from convstore.assistant.builtin.dates import END_OF_DAY, Due, parse_due
from convstore.assistant.builtin.parse import (
    add_arguments,
    clean_tag,
    extract_priority,
    extract_tags,
    parse_tasks,
)
from convstore.assistant.builtin.refs import (
    WHICH,
    Resolution,
    by_title,
    candidates_question,
    clean_ref,
    match,
    positions,
    resolve,
    words,
)
from convstore.assistant.builtin.text import strip_filler, tidy_title
from convstore.tasks.schemas import MAX_TAGS

MAX_NEW_TASKS = 16
"""At most this many tasks are added by one message ("add a, b, c, …")."""
MAX_SPLITS = 8
"""How many "X to Y" splits are tried (titles rarely contain "to" more often)."""
BARE_PRIORITIES = {
    "high": "high",
    "highest": "high",
    "top": "high",
    "priority": "high",
    "a priority": "high",
    "low": "low",
    "lowest": "low",
    "medium": "medium",
    "normal": "medium",
}
EXAMPLE_VERBS = {"complete_task": "done", "reopen_task": "reopen", "delete_task": "delete"}
"""The command word suggested in a question, per action ("For example: “delete 2”")."""


def question(found: Resolution, name: str = "") -> Plan:
    """Ask what :class:`Resolution` could not settle; with numbered candidates and a known
    action, suggest the full answer ("For example: “delete 2”.")."""
    text = found.question or WHICH
    if found.example is not None and name in EXAMPLE_VERBS:
        text += f" For example: “{EXAMPLE_VERBS[name]} {found.example}”."
    return ask(text)


def calls(name: str, tasks: Iterable[TaskView], **fields: Any) -> Plan:
    """One ``name`` call per task, with the same extra ``fields``."""
    return Plan(calls=tuple(Call(name, {"task_id": str(t.id), **fields}) for t in tasks))


def act(name: str, phrase: str, ctx: Context) -> Plan:
    """Complete, reopen or delete the task(s) ``phrase`` names."""
    found = resolve(phrase, ctx, "done" if name == "reopen_task" else "pending")
    return act_on(name, found.tasks) if found.found else question(found, name)


def act_on(name: str, tasks: tuple[TaskView, ...]) -> Plan:
    """Complete, reopen or delete ``tasks``; a text when one task is already in that state."""
    if len(tasks) == 1:
        task = tasks[0]
        if name == "complete_task" and task.completed:
            return say(messages.already_done(task.title))
        if name == "reopen_task" and not task.completed:
            return say(messages.not_done(task.title))
    return calls(name, tasks)


def complete_by_title(query: str, ctx: Context) -> Plan | None:
    """Complete the pending task ``query`` approximates ("buy the milk"); None if none does."""
    found = by_title(query, ctx, "pending")
    if found.question:
        return question(found, "complete_task")
    return act_on("complete_task", found.tasks) if found.tasks else None


def priority_level(text: str) -> str | None:
    """The priority a phrase names ("high priority", "urgent", "low"), else ``None``."""
    level, rest = extract_priority(text)
    if level is not None and not re.sub(r"\b(?:a|an|the)\b|\W", "", rest):
        return level
    return BARE_PRIORITIES.get(re.sub(r"^(?:an?|the)\s+", "", text.lower().strip()))


def updates(found: Resolution, change: Callable[[TaskView], dict[str, Any]]) -> Plan:
    """One ``update_task`` per task of ``found`` with the fields ``change`` gives for it; the
    question instead when ``found`` is not settled."""
    if not found.found:
        return question(found)
    return Plan(
        calls=tuple(Call("update_task", {"task_id": str(t.id), **change(t)}) for t in found.tasks)
    )


def set_priority(phrase: str, level: str, ctx: Context) -> Plan:
    """Give the task(s) ``phrase`` names the priority ``level``."""
    return updates(resolve(phrase, ctx), lambda t: {"priority": level})


def _due_value(task: TaskView, due: Due, ctx: Context) -> str:
    default = END_OF_DAY
    if task.due_at is not None:
        current = task.due_at.astimezone(ctx.tz)
        if due.at is None:
            default = time(current.hour, current.minute)
        elif due.day is None:
            due = Due(current.date(), due.at)
    return due.resolve(ctx.local_now, default).isoformat()


def set_due(found: Resolution, due: Due, ctx: Context) -> Plan:
    """Move the task(s) of ``found`` to ``due`` (keeping a time of day, see the module)."""
    return updates(found, lambda t: {"due_at": _due_value(t, due, ctx)})


def postpone(phrase: str, days: int, ctx: Context) -> Plan:
    """Push the task(s) ``days`` later than their due date (or than the end of today)."""
    end_of_today = Due(ctx.today, None).resolve(ctx.local_now)

    def later(task: TaskView) -> dict[str, Any]:
        due = (task.due_at or end_of_today).astimezone(ctx.tz)
        return {"due_at": (due + timedelta(days=days)).isoformat()}

    return updates(resolve(phrase, ctx), later)


def clear_due(phrase: str, ctx: Context) -> Plan:
    """Remove the due date of the task(s) ``phrase`` names (``due_at: null``)."""
    return updates(resolve(phrase, ctx), lambda t: {"due_at": None})


def rename(found: Resolution, new: str, ctx: Context) -> Plan:
    """Give the one task of ``found`` the title ``new``."""
    if found.found and len(found.tasks) > 1:
        return ask(f"{messages.ONE_AT_A_TIME} {candidates_question(found.tasks, ctx).question}")
    title = tidy_title(new)
    if not title:
        return ask(messages.NO_TITLE)
    return updates(found, lambda t: {"title": title})


def change(found: Resolution, value: str, ctx: Context) -> Plan:
    """ "change X to Y": a priority, a due date, or else a new title."""
    if (level := priority_level(value)) is not None:
        return updates(found, lambda t: {"priority": level})
    if (due := parse_due(value, ctx.local_now)) is not None:
        return set_due(found, due, ctx)
    return rename(found, value, ctx)


def split_ref(
    body: str, ctx: Context, joiner: str, accept: Callable[[str], bool] = bool
) -> tuple[Resolution, str] | None:
    """Split "X to Y" where X names a task: the first split whose left side names a task and
    whose right side ``accept`` takes; else the first split's (failed) resolution; else None."""
    first: tuple[Resolution, str] | None = None
    for m in itertools.islice(re.finditer(joiner, body, re.IGNORECASE), MAX_SPLITS):
        left, right = body[: m.start()], body[m.end() :].strip()
        if not right or not accept(right):
            continue
        found = resolve(left, ctx)
        if found.found:
            return found, right
        first = first or (found, right)
    return first


def tag_words(text: str) -> tuple[str, ...]:
    """Tags from "#home #bills", "home and bills" or "home, bills"."""
    tags, rest = extract_tags(text)
    parts = [w for w in re.split(r"[\s,]+|\band\b", rest) if w and w.lower() not in {"and", "the"}]
    extra = [t for w in parts if (t := clean_tag(w)) is not None]
    return tuple(dict.fromkeys((*tags, *extra)))


def add_tags(phrase: str, text: str, ctx: Context) -> Plan:
    """Add the tags of ``text`` to the task(s) ``phrase`` names."""
    new = tag_words(text)
    if not new:
        return ask(messages.NO_TAG)
    return updates(
        resolve(phrase, ctx), lambda t: {"tags": list(dict.fromkeys((*t.tags, *new)))[:MAX_TAGS]}
    )


def remove_tags(phrase: str, text: str, ctx: Context) -> Plan:
    """Remove the tags of ``text`` from the task(s) ``phrase`` names."""
    found, gone = resolve(phrase, ctx), set(tag_words(text))
    touched = tuple(t for t in found.tasks if gone.intersection(t.tags))
    if found.found and not touched:
        named = " ".join(f"#{tag}" for tag in sorted(gone))
        return say(messages.no_such_tags(found.tasks[0].title, named))
    return updates(
        replace(found, tasks=touched), lambda t: {"tags": [g for g in t.tags if g not in gone]}
    )


def clear_completed(ctx: Context) -> Plan:
    """Delete every done task; a text when there is none."""
    done = [t for t in ctx.tasks if t.completed]
    return calls("delete_task", done) if done else say(messages.NO_DONE)


_LEADING_LIST = re.compile(
    r"^(?:to|on|onto)\s+(?:my|the)\s+(?:todo\s+|to-do\s+|task\s+)?list\s*[:\-]?\s*", re.IGNORECASE
)


def add(body: str, ctx: Context) -> Plan:
    """Add the task(s) ``body`` describes ("milk, eggs and bread tomorrow #shop")."""
    fields = parse_tasks(_LEADING_LIST.sub("", strip_filler(body).text), ctx.local_now)
    if not fields:
        return ask(messages.NO_TITLE)
    if len(fields) > MAX_NEW_TASKS:
        return say(messages.too_many(len(fields), MAX_NEW_TASKS))
    return Plan(calls=tuple(Call("add_task", add_arguments(f, ctx.local_now)) for f in fields))


def bare_reference(text: str, ctx: Context) -> Plan | None:
    """A reference alone ("2", "the second one", or words all found in one task's title): ask
    what to do with it. None when it is not a reference."""
    ref = clean_ref(text)
    numbers = positions(ref)
    if numbers is None:
        found = by_title(ref, ctx, "pending")
        if not found.found or match(words(ref), found.tasks[0]).coverage < 0.999:
            return None
    else:
        found = resolve(text, ctx)
        if not found.found or len(found.tasks) > 1:
            return question(found)
        ref = str(numbers[0]) if numbers[0] > 0 else ref
    return ask(messages.what_to_do(found.tasks[0], ref))
