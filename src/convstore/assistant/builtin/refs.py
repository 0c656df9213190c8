"""Which task(s) a phrase refers to: a number, a pronoun or (part of) a title.

Rules:

- Numbers ("2", "#2", "number 2", "task 2", "2nd", "the second one", "first", "last", "the last
  one", "second to last") count in ``Context.last_listing``; before any list was shown, in the
  pending tasks in creation order. Several at once: "1 and 3", "1, 2, 3", "the first and the
  third". A number outside the list, or one whose task is gone, is asked back.
- "it", "that", "this (one)", "that task" mean ``Context.last_task``; without one it is asked.
- Anything else is a title, matched approximately and case-insensitively: words are compared
  after dropping articles and filler ("the", "my", "task"), with light stemming ("bought" →
  "buy", "emails" → "email") and ``difflib`` for typos. Tasks in the preferred state (pending
  for complete/update/delete, done for reopen) are searched first, the others only when none
  of those match. An exact match (every word on both sides) wins; otherwise the best match
  wins only when no other is close (within 0.1) and they are not both containing every word
  of the phrase ("milk" with "Buy milk" and "Buy milk powder" is asked back).
- A question naming candidates numbers them by their place in that same list (the last one
  shown, else the pending tasks), so the answer "2" resolves to the right task next turn; a
  candidate outside the list is named by its title only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from convstore.assistant.builtin.context import Context, TaskView
from convstore.assistant.builtin.text import join_and, plural, shorten

ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "last": -1,
    "second last": -2,
    "second to last": -2,
    "last but one": -2,
    "penultimate": -2,
}
PRONOUNS = {
    "it",
    "that",
    "this",
    "this one",
    "that one",
    "that task",
    "this task",
    "the same",
    "the same one",
    "same",
    "the one",
    "it again",
    "that again",
}
STOPWORDS = {"the", "a", "an", "my", "our", "your", "this", "that", "task", "todo", "item", "one"}
STOPWORDS |= {"to", "of", "for", "with", "and", "on", "at", "in", "some", "all", "up"}
IRREGULAR = {
    "bought": "buy",
    "paid": "pay",
    "wrote": "write",
    "written": "write",
    "sent": "send",
    "did": "do",
    "done": "do",
    "made": "make",
    "went": "go",
    "gone": "go",
    "got": "get",
    "gotten": "get",
    "took": "take",
    "taken": "take",
    "gave": "give",
    "given": "give",
    "brought": "bring",
    "met": "meet",
    "ate": "eat",
    "ran": "run",
    "found": "find",
    "told": "tell",
    "sold": "sell",
    "spoke": "speak",
    "drove": "drive",
    "fed": "feed",
    "built": "build",
    "kept": "keep",
    "swept": "sweep",
    "threw": "throw",
    "saw": "see",
    "seen": "see",
    "taught": "teach",
    "caught": "catch",
    "thought": "think",
    "chose": "choose",
    "hung": "hang",
    "wore": "wear",
    "won": "win",
    "left": "leave",
    "forgot": "forget",
    "began": "begin",
    "sang": "sing",
    "drank": "drink",
    "slept": "sleep",
    "spent": "spend",
    "lent": "lend",
    "understood": "understand",
}
PAST_TENSE = frozenset(IRREGULAR) - {"done", "left", "gone", "seen", "given", "taken", "written"}
_REF_LEAD = re.compile(r"^(?:(?:the|my)\s+|(?:task|item|number|no\.?|nr\.?)\s*(?=#?\d)|#(?=\d))")
_REF_TRAIL = re.compile(
    r"\s+(?:one|task|item|todo|to-do|off|again|too|as\s+well|(?:from|off|on)\s+(?:my|the)\s+"
    r"(?:todo\s+|to-do\s+|task\s+)?list)$"
)
_ORDINAL_NUMBER = re.compile(r"(\d+)(?:st|nd|rd|th)?")
_SEPARATORS = re.compile(r"\s*(?:,|&|\+|\band\b|\bplus\b|\bas\s+well\s+as\b)\s*")


def stem(word: str) -> str:
    """A light stem: irregular past forms, "-ied", "-ed" (with doubled consonants), "-s"."""
    word = word.removesuffix("'s")
    if word in IRREGULAR:
        return IRREGULAR[word]
    if len(word) > 4 and word.endswith("ied"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
        return (
            word[:-1] if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "lsz" else word
        )
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def words(text: str) -> tuple[str, ...]:
    """The stemmed content words of ``text``."""
    return tuple(stem(w) for w in re.findall(r"[\w']+", text.lower()) if w not in STOPWORDS)


def _similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if a.isdigit() or b.isdigit() or min(len(a), len(b)) < 4:
        return 0.0
    ratio = SequenceMatcher(None, a, b).ratio()
    return ratio if ratio >= 0.8 else 0.0


@dataclass(frozen=True)
class Match:
    """How well a phrase matches one task.

    Attributes:
        task: The task.
        score: Overlap of the phrase's and the title's words (1.0: the same words).
        coverage: The share of the phrase's words found in the title.
    """

    task: TaskView
    score: float
    coverage: float


def match(query: Sequence[str], task: TaskView) -> Match:
    """Score ``task`` against the stemmed ``query`` words."""
    title = words(task.title)
    if not query or not title:
        return Match(task, 0.0, 0.0)
    found = sum(max(_similarity(q, t) for t in title) for q in query)
    return Match(task, found / (len(query) + len(title) - found), found / len(query))


def rank(text: str, pool: Sequence[TaskView]) -> list[Match]:
    """The acceptable matches of ``text`` in ``pool``, best first (ties in pool order)."""
    query = words(text)
    matches = [match(query, task) for task in pool]
    good = [m for m in matches if m.score > 0 and (m.coverage >= 0.6 or m.score >= 0.5)]
    return sorted(good, key=lambda m: -m.score)


@dataclass(frozen=True)
class Resolution:
    """The tasks a phrase refers to, or the question to ask instead.

    Attributes:
        tasks: The tasks, in the order named; empty with a question or when nothing matched.
        question: What to ask back.
        example: With a question naming numbered candidates, the first one's number (for a
            hint like "say “delete 2”").
    """

    tasks: tuple[TaskView, ...] = ()
    question: str | None = None
    example: int | None = None

    @property
    def found(self) -> bool:
        """Whether the phrase named tasks without doubt."""
        return bool(self.tasks) and self.question is None


WHICH = "Which task do you mean? Tell me its number from your list or part of its title."


def candidates_question(tasks: Sequence[TaskView], ctx: Context) -> Resolution:
    """Ask which of ``tasks`` (at most five) is meant. Each is numbered by its place in the
    current :func:`listing`, so that answering "2" picks it on the next turn; a task outside
    that list is named by its title only."""
    numbers = {task.id: n for n, task in enumerate(listing(ctx), 1) if task is not None}
    shown = sorted(tasks[:5], key=lambda t: numbers.get(t.id, len(numbers) + 1))
    named = [
        (f"{numbers[t.id]}. {t.title}" if t.id in numbers else f"“{t.title}”")
        + (" (done)" if t.completed else "")
        for t in shown
    ]
    example = next((numbers[t.id] for t in shown if t.id in numbers), None)
    return Resolution(question=f"Which one do you mean: {join_and(named, 'or')}?", example=example)


def pick(matches: Sequence[Match], ctx: Context) -> Resolution:
    """The one clear winner of ``matches`` (best first), or a question naming the close ones."""
    exact = [m for m in matches if m.score >= 0.999]
    if exact:
        if len(exact) == 1:
            return Resolution(tasks=(exact[0].task,))
        return candidates_question([m.task for m in exact], ctx)
    best = matches[0]
    close = [
        m.task
        for m in matches
        if m.score >= best.score - 0.1 or min(m.coverage, best.coverage) >= 0.999
    ]
    return Resolution(tasks=(best.task,)) if len(close) == 1 else candidates_question(close, ctx)


def clean_ref(phrase: str) -> str:
    """A reference without articles and filler: "the second one" → "second", "task 2" → "2"."""
    text = re.sub(r"\s+", " ", phrase.lower()).strip(" \"'.,!?")
    previous = None
    while previous != text:
        previous = text
        text = _REF_TRAIL.sub("", _REF_LEAD.sub("", text)).strip()
    return text


def position(ref: str) -> int | None:
    """The list position a cleaned reference names: 1-based, negative from the end."""
    if m := _ORDINAL_NUMBER.fullmatch(ref):
        return int(m[1])
    return ORDINALS.get(ref)


def positions(ref: str) -> list[int] | None:
    """Every position of a reference like "1 and 3" or "the first and third", else ``None``."""
    parts = [clean_ref(p) for p in _SEPARATORS.split(ref) if p.strip()]
    parts = [q for p in parts for q in (p.split() if re.fullmatch(r"[\d\s]+", p) else [p])]
    found = [position(p) for p in parts]
    if not found or any(p is None for p in found):
        return None
    return [p for p in found if p is not None]


def listing(ctx: Context) -> tuple[TaskView | None, ...]:
    """The list numbers count in: the last one shown, else the pending tasks (``None``: gone)."""
    if ctx.last_listing:
        return tuple(ctx.task(task_id) for task_id in ctx.last_listing)
    return ctx.pending()


def _at(ctx: Context, number: int) -> TaskView | Resolution:
    shown = listing(ctx)
    label = f"task {number}" if number > 0 else "such task"
    if not shown:
        return Resolution(question=f"There is no {label}: you have no pending tasks. {WHICH}")
    if number == 0 or abs(number) > len(shown):
        where = (
            f"the last list had {plural(len(shown), 'task')}"
            if ctx.last_listing
            else f"you have {plural(len(shown), 'pending task')}"
        )
        return Resolution(question=f"There is no {label}: {where}. {WHICH}")
    index = number - 1 if number > 0 else len(shown) + number
    if (task := shown[index]) is None:
        return Resolution(question=f"Task {index + 1} of that list no longer exists. {WHICH}")
    return task


def by_positions(ctx: Context, numbers: Sequence[int]) -> Resolution:
    """The tasks at ``numbers`` of the current :func:`listing`."""
    tasks: dict[TaskView, None] = {}
    for number in numbers:
        found = _at(ctx, number)
        if isinstance(found, Resolution):
            return found
        tasks.setdefault(found, None)
    return Resolution(tasks=tuple(tasks))


def by_pronoun(ctx: Context) -> Resolution:
    """``Context.last_task``, or a question when there is none."""
    task = ctx.task(ctx.last_task)
    return Resolution(tasks=(task,)) if task else Resolution(question=WHICH)


def by_title(text: str, ctx: Context, prefer: str) -> Resolution:
    """The task whose title ``text`` approximates, preferring ``prefer`` ("pending"/"done")."""
    wanted = prefer == "done"
    for pool in (
        [t for t in ctx.tasks if t.completed == wanted],
        [t for t in ctx.tasks if t.completed != wanted],
    ):
        if matches := rank(text, pool):
            return pick(matches, ctx)
    return Resolution()


def _several_titles(text: str, ctx: Context, prefer: str) -> Resolution:
    parts = [p for p in _SEPARATORS.split(text) if p.strip()]
    if len(parts) < 2:
        return Resolution()
    found = [by_title(p, ctx, prefer) for p in parts]
    if not all(r.found for r in found):
        return Resolution()
    return Resolution(tasks=tuple(dict.fromkeys(t for r in found for t in r.tasks)))


def resolve(phrase: str, ctx: Context, prefer: str = "pending") -> Resolution:
    """The task(s) ``phrase`` refers to (see the module rules).

    Args:
        phrase: What the user called the task(s): "2", "it", "the milk one", "1 and 3".
        ctx: The user's tasks, last listing and last task.
        prefer: "pending" or "done": which tasks a title is matched against first.

    Returns:
        The tasks, or a question to ask back (never a silent guess).
    """
    ref = clean_ref(phrase)
    if not ref or ref in {"task", "one"}:
        return Resolution(question=WHICH)
    if ref in PRONOUNS or phrase.lower().strip() in PRONOUNS:
        return by_pronoun(ctx)
    if (numbers := positions(ref)) is not None:
        return by_positions(ctx, numbers)
    found = by_title(ref, ctx, prefer)
    if found.tasks or found.question:
        return found
    several = _several_titles(ref, ctx, prefer)
    if several.found:
        return several
    return Resolution(question=f"I couldn't find a task matching “{shorten(phrase)}”. {WHICH}")
