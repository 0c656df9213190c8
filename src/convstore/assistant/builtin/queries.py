"""Questions about the list ("what's left?", "completed tasks") as ``list_tasks`` arguments.

Rules: an utterance is a list request when, once a tag ("#work", "tagged work", or the name of
a tag some task has: "work tasks") and a priority ("high priority", "urgent") are taken out,
every word left is list vocabulary ("show", "my", "tasks", "what's", "left", "done" …) and at
least one of them (or the tag or priority) says which list. The status is, in this order:
pending when negated or "left/remaining/open" ("what haven't I done"), overdue ("overdue",
"late", "past due"), done ("done", "completed", "finished"), all ("all", "everything"), else
pending. ``list_tasks`` has no due-date filter: "what's due today" lists the pending tasks.
"""

from __future__ import annotations

import re
from typing import Any

from convstore.assistant.builtin.context import Context
from convstore.assistant.builtin.parse import extract_priority
from convstore.tasks.schemas import TAG_MAX_LENGTH

ANCHORS = frozenset(
    """task tasks todo todos to-do to-dos list lists item items things stuff left remaining
    pending open outstanding incomplete unfinished undone uncompleted done completed finished
    overdue late everything all agenda plate show display view have has due next upcoming need
    anything did""".split()
)
LIST_WORDS = ANCHORS | frozenset(
    """what what's whats is are on in my the a an of every to do did i i've ive i'm im me still
    yet already so far any there how many much list see get give tell read which for up now
    right currently current again else only not haven't havent don't dont didn't ones got let
    about can you please pls do we with today tonight tomorrow this week soon was were past
    missed behind whole entire full been just complete coming something finish
    accomplished""".split()
)
_TAG = re.compile(
    r"(?:^|\s)#(?P<a>[^\s,#]+)"
    r"|\b(?:tagged|tag|labell?ed|label|with\s+(?:the\s+)?tag)\s+#?(?P<b>[^\s,#]+)"
)
_NEGATED = re.compile(
    r"(?:n't\b|\bnot\b).*\b(?:done|completed|finished|complete)\b"
    r"|\b(?:left|remaining|pending|open|outstanding|incomplete|unfinished|undone|uncompleted)\b"
)
_OVERDUE = re.compile(r"\b(?:overdue|late|past\s+due|missed|behind)\b")
_DONE = re.compile(r"\b(?:done|completed|finished|complete|did)\b")
_ALL = re.compile(r"\b(?:all|everything|every|whole|entire|full)\b")


def _tag(text: str) -> tuple[str | None, str]:
    m = _TAG.search(text)
    if m is None:
        return None, text
    tag = (m["a"] or m["b"]).rstrip(".!?;:")
    if not tag or tag.isdigit() or len(tag) > TAG_MAX_LENGTH:
        return None, text
    return tag, f"{text[: m.start()]} {text[m.end() :]}"


def _status(text: str) -> str:
    for pattern, status in ((_NEGATED, "pending"), (_OVERDUE, "overdue"), (_DONE, "done")):
        if pattern.search(text):
            return status
    return "all" if _ALL.search(text) else "pending"


def list_arguments(text: str, ctx: Context) -> dict[str, Any] | None:
    """``list_tasks`` arguments if ``text`` asks for a list (see the module rules), else None.

    Args:
        text: The utterance without filler.
        ctx: Used for the tags the user's tasks have ("work tasks").
    """
    lowered = text.lower()
    tag, rest = _tag(lowered)
    priority, rest = extract_priority(rest)
    tokens = re.findall(r"[\w'-]+", rest)
    leftover = [t for t in tokens if t not in LIST_WORDS]
    if tag is None and len(leftover) == 1 and leftover[0] in ctx.known_tags():
        tag, leftover = leftover[0], []
    if leftover or not (ANCHORS.intersection(tokens) or tag or priority):
        return None
    arguments: dict[str, Any] = {"status": _status(rest)}
    if tag is not None:
        arguments["tag"] = tag
    if priority is not None:
        arguments["priority"] = priority
    return arguments
