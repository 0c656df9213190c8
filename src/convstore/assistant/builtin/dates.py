"""Due dates in everyday English, resolved against the user's local clock, and shown back.

Rules (``today`` is the user's calendar day in ``Context.tz``; weeks start on Monday):

- A date without a time is due at the **end of that day, 23:59** local time.
- A time without a date is **today** at that time if it is still ahead, else tomorrow.
- ``today``; ``tonight`` (today 21:00); ``tomorrow``; ``the day after tomorrow``.
- ``friday``, ``this friday``, ``on friday``: the next Friday **strictly after today** (on a
  Friday that is a week ahead). ``next friday``: the Friday of **next week** (Monday to
  Sunday), so on Monday 23 Nov "friday" is 27 Nov and "next friday" is 4 Dec. Weekday names
  must be spelled out ("fri" is not a date: it could be part of a title).
- ``next week``: next Monday. ``this week``/``end of (the) week``: this week's Sunday.
  ``(this) weekend``: this week's Saturday (today on a Saturday or Sunday); ``next weekend``:
  next week's Saturday. ``next month``: the 1st of next month. ``end of (the) month``/
  ``this month``: the month's last day. ``end of (the) year``: 31 Dec. ``end of day``/``eod``:
  today.
- ``in N days|weeks|months`` (N as digits, "a", "one" … "twelve", "a couple of", "a few" = 3)
  and ``N days from now``: that many days ahead (months keep the day, clamped to the month's
  end); ``in N hours|minutes``: exactly then (to the minute).
- ``2026-12-01`` (optionally ``T17:30``), ``dec 3``, ``december 3rd, 2027``, ``3 dec``,
  ``3rd of december``; without a year, the next such day from today on (this year or next).
  ``the 5th``: the next 5th of a month from today on. Impossible dates are not dates.
- Times: ``at 5pm``, ``5:30 pm``, ``at 17:30``, ``17h30``, ``noon``/``midday`` (12:00),
  ``midnight`` (23:59 of the day: the last minute of it), ``at 5`` (a bare hour needs "at";
  1–7 mean the afternoon, 13:00–19:00, others are 24-hour), ``in the morning`` (09:00),
  ``afternoon`` (14:00), ``evening`` (19:00), ``night`` (21:00), also as a suffix
  ("tomorrow morning") or with "this" ("this evening" = today). After "tonight"/"evening"/
  "afternoon", a bare hour below 12 is in the afternoon ("tonight at 10" = 22:00).
- The joiners before a phrase ("by", "on", "due", "before", "until", "for", "at") are removed
  with it, so the title keeps only the user's words.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

END_OF_DAY = time(23, 59)
PARTS_OF_DAY = {"morning": time(9), "afternoon": time(14), "evening": time(19), "night": time(21)}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a couple of": 2,
    "a few": 3,
}

_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_WEEKDAY = "|".join(WEEKDAYS)
COUNT = r"\d{1,3}|a\s+couple\s+of|a\s+few|" + "|".join(k for k in NUMBER_WORDS if " " not in k)
_JOIN = r"(?:\b(?:due(?:\s+(?:on|by|before))?|by|on|before|until|till|til|for|from)\s+)?"
_PART = r"(?:\s+(?:in\s+the\s+)?(?P<part>morning|afternoon|evening|night))?"


@dataclass(frozen=True)
class Due:
    """A due phrase found in text.

    Attributes:
        day: The calendar day, or ``None`` when only a time was given.
        at: The time of day, or ``None`` for "end of the day".
    """

    day: date | None
    at: time | None

    def resolve(self, now_local: datetime, default: time = END_OF_DAY) -> datetime:
        """The aware due instant in ``now_local``'s zone (see the module rules)."""
        zone = now_local.tzinfo
        if self.day is None:
            at = self.at or default
            candidate = datetime.combine(now_local.date(), at, tzinfo=zone)
            if candidate > now_local:
                return candidate
            return datetime.combine(now_local.date() + timedelta(days=1), at, tzinfo=zone)
        return datetime.combine(self.day, self.at or default, tzinfo=zone)


Found = tuple[date, time | None]
Resolver = Callable[[re.Match[str], datetime], Found | None]


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def count(word: str) -> int:
    """The number a count word stands for: "3", "three", "a couple of"."""
    word = re.sub(r"\s+", " ", word.lower())
    return int(word) if word.isdigit() else NUMBER_WORDS[word]


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _part(m: re.Match[str]) -> time | None:
    part = m.groupdict().get("part")
    return PARTS_OF_DAY[part.lower()] if part else None


def _iso(m: re.Match[str], now: datetime) -> Found | None:
    day = _safe_date(int(m["y"]), int(m["m"]), int(m["d"]))
    if day is None:
        return None
    at = time(int(m["hh"]), int(m["mm"])) if m["hh"] and int(m["hh"]) < 24 else None
    return day, at or _part(m)


def _upcoming(m: re.Match[str], now: datetime) -> Found | None:
    """A month and day (and maybe a year): the next such day from today on."""
    month, today = MONTHS[m["mon"].lower()], now.date()
    if m["y"]:
        day = _safe_date(int(m["y"]), month, int(m["d"]))
        return (day, _part(m)) if day else None
    day = _safe_date(today.year, month, int(m["d"]))
    if day is not None and day < today:
        day = _safe_date(today.year + 1, month, int(m["d"]))
    return (day, _part(m)) if day else None


def _day_of_month(m: re.Match[str], now: datetime) -> Found | None:
    """``the 5th``: the next 5th from today on (skipping months without that day)."""
    today = now.date()
    for ahead in range(13):
        first = _add_months(today.replace(day=1), ahead)
        day = _safe_date(first.year, first.month, int(m["d"]))
        if day is not None and day >= today:
            return day, _part(m)
    return None


def _relative(m: re.Match[str], now: datetime) -> Found | None:
    word = re.sub(r"\s+", " ", m["rel"].lower()).removeprefix("the ")
    offsets = {"today": 0, "tonight": 0, "tomorrow": 1, "tmrw": 1, "tmr": 1, "tmw": 1}
    offset = offsets.get(word, 2)
    implied = PARTS_OF_DAY["night"] if word == "tonight" else None
    return now.date() + timedelta(days=offset), _part(m) or implied


def _this_part(m: re.Match[str], now: datetime) -> Found | None:
    return now.date(), PARTS_OF_DAY[m["p"].lower()]


def _weekday(m: re.Match[str], now: datetime) -> Found | None:
    today, target = now.date(), WEEKDAYS.index(m["wd"].lower())
    if (m["which"] or "").lower() == "next":
        next_monday = today + timedelta(days=7 - today.weekday())
        return next_monday + timedelta(days=target), _part(m)
    ahead = (target - today.weekday() - 1) % 7 + 1
    return today + timedelta(days=ahead), _part(m)


def period_day(which: str, unit: str, today: date) -> date:
    """The day meant by ``this``/``next`` + ``week``/``weekend``/``month``/``year``."""
    monday = today - timedelta(days=today.weekday())
    if which == "next":
        monday += timedelta(days=7)
    first_of_next_month = _add_months(today.replace(day=1), 1)
    days = {
        ("next", "week"): monday,
        ("this", "week"): monday + timedelta(days=6),
        ("next", "weekend"): monday + timedelta(days=5),
        ("this", "weekend"): max(today, monday + timedelta(days=5)),
        ("next", "month"): first_of_next_month,
        ("this", "month"): first_of_next_month - timedelta(days=1),
        ("next", "year"): date(today.year + 1, 1, 1),
        ("this", "year"): date(today.year, 12, 31),
    }
    return days[which, unit]


def _weekend(m: re.Match[str], now: datetime) -> Found | None:
    which = "next" if (m["which"] or "").lower() == "next" else "this"
    return period_day(which, "weekend", now.date()), _part(m)


def _period(m: re.Match[str], now: datetime) -> Found | None:
    return period_day(m["which"].lower(), m["unit"].lower(), now.date()), _part(m)


_ABBREVIATIONS = {"eod": "day", "eow": "week", "eom": "month", "eoy": "year"}


def _end_of(m: re.Match[str], now: datetime) -> Found | None:
    unit = m["unit"].lower()
    unit = _ABBREVIATIONS.get(unit, unit)
    if unit == "day":
        return now.date(), None
    return period_day("this", unit, now.date()), None


def _in(m: re.Match[str], now: datetime) -> Found | None:
    n, unit = count(m["n"]), m["unit"].lower()
    if unit.startswith(("min", "h")):
        minutes = n * (60 if unit.startswith("h") else 1)
        then = (now.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(now.tzinfo)
        return then.date(), time(then.hour, then.minute)
    if unit.startswith("month"):
        return _add_months(now.date(), n), None
    days = n * (7 if unit.startswith("week") else 1)
    return now.date() + timedelta(days=days), None


Rule = tuple[re.Pattern[str], Resolver]


def _rule(core: str, resolver: Resolver, part: bool = True) -> Rule:
    pattern = rf"{_JOIN}\b(?:{core})\b" + (_PART if part else "")
    return re.compile(pattern, re.IGNORECASE), resolver


_UNIT = r"(?P<unit>minutes?|mins?|hours?|hrs?|days?|weeks?|months?)"
_YEAR = r"(?:,?\s+(?P<y>\d{4}))?"
DATE_RULES: tuple[Rule, ...] = (
    _rule(
        r"(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})(?:T(?P<hh>\d{1,2}):(?P<mm>\d{2}))?",
        _iso,
    ),
    _rule(rf"(?P<mon>{_MONTH})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?{_YEAR}", _upcoming),
    _rule(
        rf"(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<mon>{_MONTH}){_YEAR}",
        _upcoming,
    ),
    _rule(
        r"(?P<rel>(?:the\s+)?day\s+after\s+tomorrow|overmorrow|today|tonight|tomorrow|tmrw|tmr)",
        _relative,
    ),
    _rule(r"this\s+(?P<p>morning|afternoon|evening)", _this_part, part=False),
    _rule(rf"(?:(?P<which>next|this|coming|this\s+coming)\s+)?(?P<wd>{_WEEKDAY})", _weekday),
    _rule(
        r"(?:the\s+)?end\s+of\s+(?:the\s+|this\s+)?(?P<unit>day|week|month|year)", _end_of, False
    ),
    _rule(r"(?P<unit>eod|eow|eom|eoy)", _end_of, part=False),
    _rule(r"(?:(?P<which>next|this|the\s+coming|over\s+the|the)\s+)?weekend", _weekend),
    _rule(r"(?P<which>next|this)\s+(?P<unit>week|month|year)", _period),
    _rule(rf"in\s+(?P<n>{COUNT})\s+{_UNIT}", _in, part=False),
    _rule(rf"(?P<n>{COUNT})\s+{_UNIT}\s+from\s+now", _in, part=False),
    _rule(r"the\s+(?P<d>\d{1,2})(?:st|nd|rd|th)", _day_of_month),
)
"""Tried in order; the first rule that matches and gives a real day wins."""


@dataclass(frozen=True)
class _Clock:
    at: time
    meridiem: bool
    """Whether am/pm (or a word like noon) fixed the half of the day."""


def _hour_minute(hour: int, minute: int, meridiem: str | None) -> time | None:
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem.lower() == "p" else 0)
    return time(hour, minute) if hour < 24 and minute < 60 else None


def _ampm(m: re.Match[str]) -> _Clock | None:
    at = _hour_minute(int(m["h"]), int(m["m"] or 0), m["ap"])
    return _Clock(at, True) if at else None


def _twenty_four(m: re.Match[str]) -> _Clock | None:
    at = _hour_minute(int(m["h"]), int(m["m"]), None)
    return _Clock(at, True) if at else None


def _word_time(m: re.Match[str]) -> _Clock | None:
    word = m["w"].lower()
    if word in PARTS_OF_DAY:
        return _Clock(PARTS_OF_DAY[word], True)
    return _Clock(END_OF_DAY if word == "midnight" else time(12), True)


def _bare_hour(m: re.Match[str]) -> _Clock | None:
    hour = int(m["h"])
    if hour > 23:
        return None
    return _Clock(time(hour + 12 if 1 <= hour <= 7 else hour), False)


_AT = r"(?:\b(?:at|by|around|before)\s+|@\s*)"
TIME_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], _Clock | None]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), parse)
    for pattern, parse in (
        (rf"{_AT}?\b(?P<h>\d{{1,2}})(?:[:.](?P<m>\d{{2}}))?\s*(?P<ap>[ap])\.?m\b\.?", _ampm),
        (rf"{_AT}?\b(?P<h>\d{{1,2}})[:h](?P<m>\d{{2}})\b", _twenty_four),
        (rf"{_AT}?\b(?P<w>noon|midday|midnight)\b", _word_time),
        (r"\b(?:in\s+the|at)\s+(?P<w>morning|afternoon|evening|night)\b", _word_time),
        (rf"{_AT}(?P<h>\d{{1,2}})\b(?:\s*o'?clock)?(?!\s*(?:st|nd|rd|th|%|[-/.:]\d))", _bare_hour),
    )
)
"""Tried in order on what is left once the day is cut out; the first real time wins."""


def _cut(text: str, m: re.Match[str]) -> str:
    return re.sub(r"\s+", " ", f"{text[: m.start()]} {text[m.end() :]}").strip()


def _find_day(text: str, now_local: datetime) -> tuple[Found | None, str]:
    for pattern, resolve in DATE_RULES:
        for m in pattern.finditer(text):
            if (found := resolve(m, now_local)) is not None:
                return found, _cut(text, m)
    return None, text


def _find_time(text: str) -> tuple[_Clock | None, str]:
    for pattern, parse in TIME_RULES:
        for m in pattern.finditer(text):
            if (clock := parse(m)) is not None:
                return clock, _cut(text, m)
    return None, text


def _clock_time(implied: time | None, clock: _Clock | None) -> time | None:
    """The explicit time wins; after "tonight"/"evening", "at 10" means 22:00."""
    if clock is None:
        return implied
    if not clock.meridiem and implied is not None and implied.hour >= 14 and clock.at.hour < 12:
        return clock.at.replace(hour=clock.at.hour + 12)
    return clock.at


def extract_due(text: str, now_local: datetime) -> tuple[Due | None, str]:
    """Find one due phrase (a day and/or a time) in ``text``.

    Args:
        text: Free text, e.g. "call mom on friday at 5pm".
        now_local: The current instant in the user's zone.

    Returns:
        The due phrase found (or ``None``) and the text without it (and its joiners).
    """
    found, text = _find_day(text, now_local)
    clock, text = _find_time(text)
    if found is None and clock is None:
        return None, text
    day, implied = found if found is not None else (None, None)
    return Due(day, _clock_time(implied, clock)), text


def parse_due(text: str, now_local: datetime) -> Due | None:
    """``text`` as a due phrase and nothing else ("friday at 5pm"), or ``None``."""
    due, rest = extract_due(text, now_local)
    rest = re.sub(r"^(?:the|at|on|by|for|to|due)\b|[\s,.;:-]+", "", rest, flags=re.IGNORECASE)
    return due if due is not None and not rest else None


MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day_word(day: date, today: date) -> str:
    """``today``, ``tomorrow``, ``yesterday``, a weekday within the coming week (``Friday``),
    else ``Dec 3`` (with the year when it is not this year's)."""
    delta = (day - today).days
    words = {0: "today", 1: "tomorrow", -1: "yesterday"}
    if delta in words:
        return words[delta]
    if 2 <= delta <= 6:
        return WEEKDAYS[day.weekday()].capitalize()
    year = f", {day.year}" if day.year != today.year else ""
    return f"{MONTH_ABBR[day.month - 1]} {day.day}{year}"


def long_day(day: date) -> str:
    """``Tue 24 Nov``."""
    return f"{WEEKDAYS[day.weekday()][:3].capitalize()} {day.day} {MONTH_ABBR[day.month - 1]}"


def describe(due: datetime, now_local: datetime, *, long: bool = False) -> str:
    """A due instant as the user reads it: ``tomorrow``, ``Friday at 17:00``, ``Dec 3``.

    Args:
        due: The aware due instant.
        now_local: The current instant in the user's zone.
        long: Add the calendar day after "tomorrow" or a weekday: ``tomorrow (Tue 24 Nov)``.
    """
    local = due.astimezone(now_local.tzinfo)
    day, today = local.date(), now_local.date()
    text = day_word(day, today)
    if long and 1 <= (day - today).days <= 6:
        text += f" ({long_day(day)})"
    if (local.hour, local.minute) != (END_OF_DAY.hour, END_OF_DAY.minute):
        text += f" at {local:%H:%M}"
    return text
