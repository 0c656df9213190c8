"""Text helpers shared by the parser and the reply: normalising an utterance, stripping polite
filler, tidying a title, and joining words into English lists.

Rules:

- Curly quotes become straight ones, control characters and repeated whitespace go, and
  trailing ``.``, ``!`` and ``?`` are dropped. The user's letter case is kept (titles keep it);
  every pattern matches case-insensitively.
- Leading filler is stripped repeatedly: greetings-as-openers ("hey, ..."), politeness
  ("please", "can you", "could you"), and the *add* fillers. "remind me to", "don't forget to"
  and "remember to" always mean *add*; "I need to", "I have to", "I want to", "I must" and
  friends mean *add* unless the rest starts with a command word ("I want to see my tasks"):
  then the command, or a new task when the command is not understood ("I have to move the
  car").
- Trailing filler: "please", "thanks", "for me", "if you can".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from convstore.tasks.schemas import TASK_TITLE_MAX_LENGTH

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‛": "'", "“": '"', "”": '"', "„": '"'})

_OPENER = re.compile(
    r"(?:please|pls|plz|kindly|hey|hi|hello|ok|okay|so|now|also|and|then|oh|well|um+|uh+"
    r"|yes|yeah|yep|alright|right|great|thanks|thank you|assistant)\b[\s,!.:;-]+",
    re.IGNORECASE,
)
_POLITE = re.compile(
    r"(?:(?:can|could|would|will)\s+you(?:\s+please)?|i(?:'d|\s+would)\s+like\s+you\s+to"
    r"|i\s+(?:want|need)\s+you\s+to|help\s+me|let's|lets|go\s+ahead\s+and)\s+",
    re.IGNORECASE,
)
_STRONG_ADD = re.compile(
    r"(?:remind\s+me\s+(?:to|that\s+i\s+(?:need|have)\s+to|about)|don'?t\s+forget\s+(?:to|about)"
    r"|do\s+not\s+forget\s+(?:to|about)|remember\s+to|make\s+sure\s+(?:i|to))\s+",
    re.IGNORECASE,
)
_WEAK_ADD = re.compile(
    r"(?:i\s+(?:really\s+|still\s+|also\s+)?(?:need|have|want|got|ought)\s+to|i\s+(?:must|should)"
    r"|i(?:'d|\s+would)\s+like\s+to|i\s+gotta|i'll\s+have\s+to|need\s+to|have\s+to|gotta"
    r"|must)\s+",
    re.IGNORECASE,
)
_COMMAND_WORD = re.compile(
    r"(?:add|create|show|list|see|view|display|delete|remove|rename|reopen|mark|check|tick"
    r"|move|reschedule|change|set|tag|untag|clear|undo|complete|make)\b",
    re.IGNORECASE,
)
_TRAILER = re.compile(
    r"[\s,]+(?:please|pls|plz|thanks|thank\s+you|thx|for\s+me|if\s+you\s+can|if\s+possible)$",
    re.IGNORECASE,
)
_EDGE_JOINERS = re.compile(
    r"(?:^[\s:;,.\-–—]+)|(?:[\s:;,\-–—]+$)"
    r"|(?:\s+(?:by|on|due|at|before|until|till|and|for|the|&)$)",
    re.IGNORECASE,
)
_LIST_SUFFIX = re.compile(
    r"\s+(?:to|on|onto|in)\s+(?:my|the)\s+(?:todo\s+|to-do\s+|task\s+)?(?:list|tasks|todos)$",
    re.IGNORECASE,
)


def normalize(utterance: str) -> str:
    """Straight quotes, no control characters or lone surrogates, single spaces, no trailing
    ``.!?``."""
    text = utterance.translate(_QUOTES)
    text = "".join(" " if unicodedata.category(c) in {"Cc", "Cs"} else c for c in text)
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip(".!? ").strip()


@dataclass(frozen=True)
class Cleaned:
    """An utterance without its filler.

    Attributes:
        text: What is left, case kept.
        add: "strong" after "remind me to"-like openers and "weak" after "I need to"-like ones
            (both: a new task); "maybe" after "I need to" + a command word (the command, or
            a new task if it is not understood); else "".
    """

    text: str
    add: str = ""


def strip_filler(text: str) -> Cleaned:
    """Remove leading politeness and add-openers and trailing courtesies (see the module)."""
    add = ""
    while True:
        text = _TRAILER.sub("", text).strip()
        for pattern, kind in ((_OPENER, ""), (_POLITE, ""), (_STRONG_ADD, "strong")):
            if (m := pattern.match(text)) and m.end() < len(text):
                text, add = text[m.end() :], add or kind
                break
        else:
            if not add and (m := _WEAK_ADD.match(text)) and m.end() < len(text):
                rest = text[m.end() :]
                return Cleaned(rest, "maybe" if _COMMAND_WORD.match(rest) else "weak")
            return Cleaned(text, add)


def tidy_title(text: str) -> str:
    """A title from leftover words: no dangling joiners, quotes or list suffixes, first letter
    upper-cased, at most the title length (cut at a word boundary)."""
    text = _LIST_SUFFIX.sub("", re.sub(r"\s+", " ", text).strip())
    previous = None
    while previous != text:
        previous, text = text, _EDGE_JOINERS.sub("", text).strip()
    text = strip_quotes(text)
    if len(text) > TASK_TITLE_MAX_LENGTH:
        text = text[:TASK_TITLE_MAX_LENGTH].rsplit(" ", 1)[0].rstrip(" ,;:-")
    return capitalize(text)


def strip_quotes(text: str) -> str:
    """Remove one pair of surrounding quotes."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1].strip()
    return text


def capitalize(text: str) -> str:
    """Upper-case the first letter unless the word looks deliberate ("iPhone", "eBay")."""
    if text[:1].islower() and not text[1:2].isupper():
        return text[0].upper() + text[1:]
    return text


def quoted(title: str) -> str:
    """A title in curly quotes: “Buy milk”."""
    return f"“{title}”"


def join_and(items: Sequence[str], conjunction: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def plural(count: int, noun: str) -> str:
    """``1 task``, ``2 tasks``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def shorten(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters (at a word boundary, with "…") for echoing back."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
