"""New tasks from free text: title, due date, priority and tags.

Rules:

- Tags: ``#word`` anywhere (lower-cased, without the ``#``; at most 16, each at most 32
  characters), and ``tagged word``/``with tag word``. A ``#`` followed by digits only ("#2") is
  a task number, never a tag.
- Priority: "high priority", "priority high", "top priority", "urgent", "important", "asap",
  "critical", "!!" → high; "low priority", "not urgent", "no rush", "someday", "whenever",
  "sometime" → low; "medium/normal priority" → medium. Otherwise medium.
- Due: see :mod:`.dates`.
- Title: the words left once those phrases (and joiners like "by", "on", "due") are cut out;
  "a task to", "to my list" and surrounding quotes go too; the first letter is upper-cased.
- Several tasks: when the text holds a comma or semicolon it is a list: split on those and on
  "and"/"&" inside the last item ("milk, eggs and bread" → three tasks). Without a comma "and"
  stays in the title ("call mom and dad"). Fragments without a title ("pay rent, due friday")
  and the attributes of the last item, when no other item has any, apply to every task
  ("milk, eggs and bread tomorrow #shop" → all three due tomorrow, tagged shop).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from convstore.assistant.builtin.dates import Due, extract_due
from convstore.assistant.builtin.text import tidy_title
from convstore.tasks.schemas import MAX_TAGS, TAG_MAX_LENGTH

_TAG = re.compile(
    r"(?:(?<=\s)|^)#(?P<tag>[^\s,#]+)|\b(?:tagged|labell?ed|with\s+(?:the\s+)?(?:tag|label))"
    r"\s+#?(?P<word>[^\s,#]+)",
    re.IGNORECASE,
)
_PRIO_JOIN = r"(?:\b(?:with|as|at|and|a|is)\s+)*"
_PRIORITIES = tuple(
    (re.compile(_PRIO_JOIN + pattern, re.IGNORECASE), level)
    for pattern, level in (
        (
            r"(?:\b(?:low|lowest)[\s-]+prio(?:rity)?\b|\bprio(?:rity)?[\s:=]+low\b|\bnot\s+urgent\b"
            r"|\bnot\s+important\b|\bno\s+(?:rush|hurry)\b|\bsome\s?day\b|\bwhenever\b"
            r"|\bsometime\b)",
            "low",
        ),
        (
            r"(?:\b(?:medium|normal|mid|regular)[\s-]+prio(?:rity)?\b"
            r"|\bprio(?:rity)?[\s:=]+(?:medium|normal)\b)",
            "medium",
        ),
        (
            r"(?:\b(?:high|highest|top)[\s-]+prio(?:rity)?\b|\bprio(?:rity)?[\s:=]+high\b"
            r"|\burgent(?:ly)?\b|\bimportant\b|\basap\b|\bcritical\b|!{2,})",
            "high",
        ),
    )
)
_TASK_PREFIX = re.compile(
    r"^(?:(?:a|an|the)\s+)?(?:new\s+)?(?:task|todo|to-do|reminder|item)\s*"
    r"(?::|-|\bto\b|\bcalled\b|\bnamed\b|\bfor\b)\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class TaskFields:
    """What one "add" phrase says about a new task."""

    title: str
    due: Due | None = None
    priority: str | None = None
    tags: tuple[str, ...] = ()

    def has_attributes(self) -> bool:
        """Whether a due date, a priority or a tag was given."""
        return self.due is not None or self.priority is not None or bool(self.tags)


def clean_tag(raw: str) -> str | None:
    """``raw`` as a stored tag (lower-case, no trailing punctuation), or None if it is not one."""
    tag = raw.lower().rstrip(".!?;:)'\"")
    if not tag or tag.isdigit() or len(tag) > TAG_MAX_LENGTH:
        return None
    return tag


def extract_tags(text: str) -> tuple[tuple[str, ...], str]:
    """The tags in ``text`` (see the module rules) and the text without them."""
    tags: dict[str, None] = {}

    def take(m: re.Match[str]) -> str:
        tag = clean_tag(m["tag"] or m["word"])
        if tag is None:
            return m.group()
        tags.setdefault(tag, None)
        return " "

    rest = _TAG.sub(take, text)
    return tuple(tags)[:MAX_TAGS], re.sub(r"\s+", " ", rest).strip()


def extract_priority(text: str) -> tuple[str | None, str]:
    """The priority named in ``text`` (``None`` if none) and the text without it."""
    for pattern, level in _PRIORITIES:
        if m := pattern.search(text):
            rest = f"{text[: m.start()]} {text[m.end() :]}"
            return level, re.sub(r"\s+", " ", rest).strip()
    return None, text


def parse_task(text: str, now_local: datetime) -> TaskFields:
    """One task from one phrase, e.g. "pay rent due next week high priority #home".

    Args:
        text: The phrase (without the "add" command).
        now_local: The current instant in the user's zone.

    Returns:
        The fields; ``title`` is empty when only attributes were given.
    """
    tags, text = extract_tags(text)
    priority, text = extract_priority(text)
    due, text = extract_due(text, now_local)
    title = tidy_title(_TASK_PREFIX.sub("", tidy_title(text)))
    return TaskFields(title=title, due=due, priority=priority, tags=tags)


def split_items(text: str) -> list[str]:
    """Split a list of tasks ("milk, eggs and bread"); a text without commas is one item."""
    text = re.sub(r"(\d)(st|nd|rd|th)?,\s*(\d{4})\b", r"\1\2 \3", text)
    if not re.search(r"[,;]", text):
        return [text]
    parts = [p for p in re.split(r"\s*[,;]\s*", text) if p]
    if not parts:
        return [text]
    last = re.split(r"^(?:and|&)\s+|\s+(?:and|&)\s+", parts[-1], flags=re.IGNORECASE)
    return [p for p in [*parts[:-1], *last] if p.strip()]


def _merge(into: TaskFields, extra: TaskFields) -> TaskFields:
    tags = tuple(dict.fromkeys((*into.tags, *extra.tags)))[:MAX_TAGS]
    return replace(
        into, due=into.due or extra.due, priority=into.priority or extra.priority, tags=tags
    )


def parse_tasks(text: str, now_local: datetime) -> list[TaskFields]:
    """Every task of an "add" body, with shared attributes spread (see the module rules)."""
    items = [parse_task(part, now_local) for part in split_items(text)]
    titled = [item for item in items if item.title]
    shared = TaskFields(title="")
    for item in items:
        if not item.title:
            shared = _merge(shared, item)
    if len(titled) > 1 and not any(item.has_attributes() for item in titled[:-1]):
        shared = _merge(shared, titled[-1])
    return [_merge(item, shared) for item in titled]


def add_arguments(fields: TaskFields, now_local: datetime) -> dict[str, Any]:
    """``add_task`` arguments for ``fields`` (JSON-ready)."""
    arguments: dict[str, Any] = {
        "title": fields.title,
        "priority": fields.priority or "medium",
        "tags": list(fields.tags),
    }
    if fields.due is not None:
        arguments["due_at"] = fields.due.resolve(now_local).isoformat()
    return arguments
