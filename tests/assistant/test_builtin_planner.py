"""The builtin assistant's language core: ``plan()`` and ``reply()``, pure and deterministic.

Every case runs against a fixed clock, Monday 2026-11-23 10:00 in Europe/Amsterdam (UTC+1), so
due dates are exact: "tomorrow" is Tue 24 Nov 23:59, "friday" Fri 27 Nov, "next friday" Fri 4
Dec, "next week" Mon 30 Nov. No database is involved.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from convstore.assistant.builtin import (
    Call,
    Context,
    Outcome,
    Plan,
    TaskView,
    messages,
    plan,
    reply,
)
from convstore.assistant.tools import TOOLS
from convstore.tasks.schemas import TaskRead

TZ = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)  # a Monday


def at(month: int, day: int, hour: int = 23, minute: int = 59, year: int = 2026) -> datetime:
    """A local time in TZ; the default time is the end of the day (the rule for bare dates)."""
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


def _task(n: int, title: str, done: bool = False, **fields: Any) -> TaskView:
    fields.setdefault("priority", "medium")
    fields.setdefault("tags", ())
    fields.setdefault("due_at", None)
    return TaskView(id=uuid.UUID(int=n), title=title, completed=done, **fields)


MILK = _task(1, "Buy milk", tags=("home",), due_at=at(11, 24))
POWDER = _task(2, "Buy milk powder")
DENTIST = _task(3, "Dentist appointment", due_at=at(11, 25, 17, 0))
REPORT = _task(4, "Write report", priority="high", tags=("work",))
MOM = _task(5, "Call mom", done=True)
RENT = _task(6, "Pay rent", done=True, tags=("home", "bills"))
PASSPORT = _task(7, "Renew passport", priority="low", due_at=at(11, 20))
TASKS = (MILK, POWDER, DENTIST, REPORT, MOM, RENT, PASSPORT)
GONE = uuid.UUID(int=99)
"""Pending in creation order: 1 Buy milk, 2 Buy milk powder, 3 Dentist, 4 Write report,
5 Renew passport (overdue)."""

CTX = Context(tasks=TASKS, last_listing=(), last_task=REPORT.id, now=NOW, tz=TZ)
LISTED = replace(CTX, last_listing=(RENT.id, DENTIST.id, MOM.id, GONE), last_task=None)
"""After a list showing 1 Pay rent, 2 Dentist, 3 Call mom, 4 (a task deleted since)."""
EMPTY = Context(tasks=(), last_listing=(), last_task=None, now=NOW, tz=TZ)


# --- expectations -------------------------------------------------------------------------


def add(
    title: str,
    due: datetime | None = None,
    priority: str = "medium",
    tags: Sequence[str] = (),
) -> tuple[str, dict[str, Any]]:
    arguments: dict[str, Any] = {"title": title, "priority": priority, "tags": list(tags)}
    if due is not None:
        arguments["due_at"] = due
    return "add_task", arguments


def done(task: TaskView) -> tuple[str, dict[str, Any]]:
    return "complete_task", {"task_id": task.id}


def reopen(task: TaskView) -> tuple[str, dict[str, Any]]:
    return "reopen_task", {"task_id": task.id}


def delete(task: TaskView) -> tuple[str, dict[str, Any]]:
    return "delete_task", {"task_id": task.id}


def update(task: TaskView, **fields: Any) -> tuple[str, dict[str, Any]]:
    return "update_task", {"task_id": task.id, **fields}


def listing(status: str = "pending", **filters: str) -> tuple[str, dict[str, Any]]:
    return "list_tasks", {"status": status, **filters}


@dataclass(frozen=True)
class Ask:
    """A question back containing ``part``."""

    part: str


@dataclass(frozen=True)
class Say:
    """A text answer containing ``part``."""

    part: str


Expected = list[tuple[str, dict[str, Any]]] | Ask | Say


def _decoded(arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments as comparable values: ids as UUID, due dates as aware datetimes."""
    out = dict(arguments)
    if "task_id" in out:
        out["task_id"] = uuid.UUID(out["task_id"])
    if isinstance(out.get("due_at"), str):
        due = datetime.fromisoformat(out["due_at"])
        assert due.utcoffset() is not None, "due_at must carry an offset"
        out["due_at"] = due
    return out


def check(result: Plan, expected: Expected) -> None:
    if isinstance(expected, Ask):
        assert (result.calls, result.text) == ((), None)
        assert expected.part in (result.question or "")
    elif isinstance(expected, Say):
        assert (result.calls, result.question) == ((), None)
        assert expected.part in (result.text or "")
    else:
        assert (result.question, result.text) == (None, None)
        assert [(c.name, _decoded(c.arguments)) for c in result.calls] == expected


# --- the table ------------------------------------------------------------------------------

WHICH_MILK = Ask("Which one do you mean: 1. Buy milk or 2. Buy milk powder?")
"""Candidates are numbered by their place in the list "2" would resolve against next turn."""
TWIN = _task(8, "Buy milk")
TWINS = replace(CTX, tasks=(*TASKS, TWIN))

CASES: list[tuple[str, Expected, Context]] = [
    # add: plain, with due phrases, priorities, tags, filler
    ("add buy milk", [add("Buy milk")], CTX),
    ("add buy milk tomorrow", [add("Buy milk", at(11, 24))], CTX),
    ("remind me to call mom on friday", [add("Call mom", at(11, 27))], CTX),
    (
        "add pay rent due next week high priority #home #bills",
        [add("Pay rent", at(11, 30), "high", ["home", "bills"])],
        CTX,
    ),
    ("new task: write report by 2026-12-01", [add("Write report", at(12, 1))], CTX),
    (
        "add dentist appointment on dec 3 at 5pm",
        [add("Dentist appointment", at(12, 3, 17, 0))],
        CTX,
    ),
    ("urgent: renew passport", [add("Renew passport", priority="high")], CTX),
    ("add clean the garage someday", [add("Clean the garage", priority="low")], CTX),
    ("add file taxes whenever", [add("File taxes", priority="low")], CTX),
    ("add fix the leak asap", [add("Fix the leak", priority="high")], CTX),
    ("add important: call the bank", [add("Call the bank", priority="high")], CTX),
    ("add water plants low priority", [add("Water plants", priority="low")], CTX),
    ("add milk, eggs and bread", [add("Milk"), add("Eggs"), add("Bread")], CTX),
    (
        "add milk, eggs and bread tomorrow #shop",
        [add(t, at(11, 24), tags=["shop"]) for t in ("Milk", "Eggs", "Bread")],
        CTX,
    ),
    ("add call mom and dad", [add("Call mom and dad")], CTX),
    ("add buy eggs, due friday", [add("Buy eggs", at(11, 27))], CTX),
    ("Please add buy bread tomorrow at noon.", [add("Buy bread", at(11, 24, 12, 0))], CTX),
    ("PLEASE ADD Buy Milk!!", [add("Buy Milk")], CTX),
    ("can you add water plants in 3 days", [add("Water plants", at(11, 26))], CTX),
    ("could you add gym at 17:30", [add("Gym", at(11, 23, 17, 30))], CTX),
    ("I need to call the bank tomorrow morning", [add("Call the bank", at(11, 24, 9, 0))], CTX),
    ("don't forget to finish the report", [add("Finish the report")], CTX),
    ("I need to finish the report", [add("Finish the report")], CTX),
    ("I have to move the car", [add("Move the car")], CTX),
    ("add a task to book flights next friday", [add("Book flights", at(12, 4))], CTX),
    ("add submit taxes end of month", [add("Submit taxes", at(11, 30))], CTX),
    ("add plan trip by the end of the week", [add("Plan trip", at(11, 29))], CTX),
    ("add clean windows this weekend", [add("Clean windows", at(11, 28))], CTX),
    ("add gym tonight", [add("Gym", at(11, 23, 21, 0))], CTX),
    ("add call Anna tonight at 10", [add("Call Anna", at(11, 23, 22, 0))], CTX),
    ("add call grandma at 7", [add("Call grandma", at(11, 23, 19, 0))], CTX),
    ("add stand-up at 9am", [add("Stand-up", at(11, 24, 9, 0))], CTX),
    ("add pay bills in 2 hours", [add("Pay bills", at(11, 23, 12, 0))], CTX),
    ("add party 3 december", [add("Party", at(12, 3))], CTX),
    ("add lunch with Sam on the 5th", [add("Lunch with Sam", at(12, 5))], CTX),
    ("add visit Rome on march 30", [add("Visit Rome", at(3, 30, year=2027))], CTX),
    ("add renew lease on dec 3rd, 2027", [add("Renew lease", at(12, 3, year=2027))], CTX),
    ("add call the plumber day after tomorrow", [add("Call the plumber", at(11, 25))], CTX),
    ("add review PR on monday", [add("Review PR", at(11, 30))], CTX),
    ("add team lunch this wednesday", [add("Team lunch", at(11, 25))], CTX),
    ("add book club friday evening", [add("Book club", at(11, 27, 19, 0))], CTX),
    ("add renew insurance in 2 weeks", [add("Renew insurance", at(12, 7))], CTX),
    ("add start course next month", [add("Start course", at(12, 1))], CTX),
    (
        "add report due 2026-11-30T09:30 #work",
        [add("Report", at(11, 30, 9, 30), tags=["work"])],
        CTX,
    ),
    ("add fix bug tagged work", [add("Fix bug", tags=["work"])], CTX),
    ("add #Home buy soap", [add("Buy soap", tags=["home"])], CTX),
    ("create a new task called review PR by friday", [add("Review PR", at(11, 27))], CTX),
    ("todo: buy stamps", [add("Buy stamps")], CTX),
    ("new todo - water the plants", [add("Water the plants")], CTX),
    ("add buy milk to my list", [add("Buy milk")], CTX),
    ('add "Read Dune"', [add("Read Dune")], CTX),
    ("add something on february 30", [add("Something on february 30")], CTX),
    ("add remind me to call mom", [add("Call mom")], CTX),
    ("add", Ask(messages.NO_TITLE), CTX),
    ("add " + ", ".join(f"item {n}" for n in range(17)), Say("That's 17 tasks at once"), CTX),
    ("add tomorrow", Ask(messages.NO_TITLE), CTX),
    # list
    ("what's on my list", [listing()], CTX),
    ("show my tasks", [listing()], CTX),
    ("what is left?", [listing()], CTX),
    ("Could you please show me my to-do list?", [listing()], CTX),
    ("how many tasks do I have", [listing()], CTX),
    ("list", [listing()], CTX),
    ("list everything", [listing("all")], CTX),
    ("all tasks", [listing("all")], CTX),
    ("what have I done", [listing("done")], CTX),
    ("completed tasks", [listing("done")], CTX),
    ("show me everything I've completed", [listing("done")], CTX),
    ("what haven't I done yet", [listing()], CTX),
    ("what's overdue", [listing("overdue")], CTX),
    ("any overdue tasks?", [listing("overdue")], CTX),
    ("tasks tagged home", [listing(tag="home")], CTX),
    ("#work tasks", [listing(tag="work")], CTX),
    ("work tasks", [listing(tag="work")], CTX),
    ("show all my #home tasks", [listing("all", tag="home")], CTX),
    ("high priority tasks", [listing(priority="high")], CTX),
    ("show urgent tasks", [listing(priority="high")], CTX),
    ("show low priority tasks", [listing(priority="low")], CTX),
    ("I want to see my tasks", [listing()], CTX),
    ("what's due today?", [listing()], CTX),
    ("what's next?", [listing()], CTX),
    ("what do I need to do today?", [listing()], CTX),
    ("anything overdue?", [listing("overdue")], CTX),
    ("what did I finish?", [listing("done")], CTX),
    # complete
    ("mark 2 done", [done(POWDER)], CTX),
    ("done with the second one", [done(POWDER)], CTX),
    ("finish buy milk", [done(MILK)], CTX),
    ("complete it", [done(REPORT)], CTX),
    ("I bought the milk", [done(MILK)], CTX),
    ("check off 1 and 3", [done(MILK), done(DENTIST)], CTX),
    ("hey, can you mark #2 as done please", [done(POWDER)], CTX),
    ("number 2 is done", [done(POWDER)], CTX),
    ("task 3 done", [done(DENTIST)], CTX),
    ("mark task 3 as complete", [done(DENTIST)], CTX),
    ("tick off the first one", [done(MILK)], CTX),
    ("the first and third are done", [done(MILK), done(DENTIST)], CTX),
    ("mark the last one as done", [done(PASSPORT)], CTX),
    ("I finished the report", [done(REPORT)], CTX),
    ("write report is done", [done(REPORT)], CTX),
    ("the dentist is done", [done(DENTIST)], CTX),
    ("I renewed my passport", [done(PASSPORT)], CTX),
    ("finish the dentist apointment", [done(DENTIST)], CTX),
    ("done", [done(REPORT)], CTX),
    ("I did it", [done(REPORT)], CTX),
    ("complete call mom", Say("“Call mom” is already done."), CTX),
    ("I called mom", Say("“Call mom” is already done."), CTX),
    ("finish milk", WHICH_MILK, CTX),
    ("mark 2 done", [done(DENTIST)], LISTED),
    ("mark 3 done", Say("“Call mom” is already done."), LISTED),
    # reopen
    ("reopen 1", [reopen(RENT)], LISTED),
    ("reopen call mom", [reopen(MOM)], CTX),
    ("mark call mom as not done", [reopen(MOM)], CTX),
    ("mark pay rent as not done", [reopen(RENT)], CTX),
    ("un-complete pay rent", [reopen(RENT)], CTX),
    ("pay rent isn't done", [reopen(RENT)], CTX),
    ("undo that", [reopen(MOM)], replace(CTX, last_task=MOM.id)),
    ("undo", [reopen(MOM)], replace(CTX, last_task=MOM.id)),
    ("reopen 2", Say("“Buy milk powder” isn't marked as done"), CTX),
    # update
    ("rename 2 to buy oat milk", [update(POWDER, title="Buy oat milk")], CTX),
    ("change the title of buy milk to buy oat milk", [update(MILK, title="Buy oat milk")], CTX),
    ("rename the report to write final report", [update(REPORT, title="Write final report")], CTX),
    ("rename it to something else", [update(REPORT, title="Something else")], CTX),
    ("change buy milk to buy almond milk", [update(MILK, title="Buy almond milk")], CTX),
    ("move dentist to friday", [update(DENTIST, due_at=at(11, 27, 17, 0))], CTX),
    ("move renew passport to next week", [update(PASSPORT, due_at=at(11, 30))], CTX),
    ("push dentist to thursday at 3pm", [update(DENTIST, due_at=at(11, 26, 15, 0))], CTX),
    ("move 1 to 5pm", [update(MILK, due_at=at(11, 24, 17, 0))], CTX),
    ("postpone 1 by 2 days", [update(MILK, due_at=at(11, 26))], CTX),
    ("set the due date of 3 to tomorrow", [update(DENTIST, due_at=at(11, 24, 17, 0))], CTX),
    ("set the due date of 2 to tomorrow", [update(POWDER, due_at=at(11, 24))], CTX),
    ("change 2 to tomorrow", [update(POWDER, due_at=at(11, 24))], CTX),
    ("it's due friday", [update(REPORT, due_at=at(11, 27))], CTX),
    ("remove the due date of 1", [update(MILK, due_at=None)], CTX),
    (
        "rename 1 and 2 to buy oat milk",
        Ask("I can rename one task at a time. Which one do you mean: 1. Buy milk or 2. Buy"),
        CTX,
    ),
    ("move dentist to someday soon", Ask("I didn't understand “someday soon”"), CTX),
    ("postpone the report", Ask("When should “Write report” be due?"), CTX),
    ("make it high priority", [update(REPORT, priority="high")], CTX),
    (
        "make 1 and 2 high priority",
        [update(MILK, priority="high"), update(POWDER, priority="high")],
        CTX,
    ),
    ("set 4 to low", [update(REPORT, priority="low")], CTX),
    ("change 4 to low priority", [update(REPORT, priority="low")], CTX),
    ("prioritize 2", [update(POWDER, priority="high")], CTX),
    ("mark 3 as urgent", [update(DENTIST, priority="high")], CTX),
    ("give 3 low priority", [update(DENTIST, priority="low")], CTX),
    ("tag 1 with #home", [update(MILK, tags=["home"])], CTX),
    ("tag 4 with #urgent", [update(REPORT, tags=["work", "urgent"])], CTX),
    ("tag 2 with shopping and errands", [update(POWDER, tags=["shopping", "errands"])], CTX),
    ("add #urgent to 2", [update(POWDER, tags=["urgent"])], CTX),
    ("remove tag home from 1", [update(MILK, tags=[])], CTX),
    ("remove the home tag from pay rent", [update(RENT, tags=["bills"])], CTX),
    ("untag pay rent #bills", [update(RENT, tags=["home"])], CTX),
    ("untag 2 #home", Say("“Buy milk powder” isn't tagged #home."), CTX),
    # delete
    ("delete 3", [delete(DENTIST)], CTX),
    ("remove the last one", [delete(PASSPORT)], CTX),
    ("get rid of buy milk", [delete(MILK)], CTX),
    ("delete it", [delete(REPORT)], CTX),
    ("delete 2, 3", [delete(POWDER), delete(DENTIST)], CTX),
    ("delete the milk powder", [delete(POWDER)], CTX),
    ("cancel the dentist appointment", [delete(DENTIST)], CTX),
    ("delete the second to last one", [delete(REPORT)], CTX),
    ("delete number 5", [delete(PASSPORT)], CTX),
    ("delete 2", [delete(DENTIST)], LISTED),
    ("remove the last one", Ask("Task 4 of that list no longer exists."), LISTED),
    ("remove the second to last one", [delete(MOM)], LISTED),
    ("delete milk", WHICH_MILK, CTX),
    ("delete milk", Ask("Which one do you mean: “Buy milk” or “Buy milk powder”?"), LISTED),
    ("delete buy milk", Ask("Which one do you mean: 1. Buy milk or 6. Buy milk?"), TWINS),
    ("get rid of pay rent", [delete(RENT)], CTX),
    ("delete all tasks", Say(messages.DELETE_ALL), CTX),
    # clear completed
    ("clear completed", [delete(MOM), delete(RENT)], CTX),
    ("remove all done tasks", [delete(MOM), delete(RENT)], CTX),
    ("clear completed", Say(messages.NO_DONE), EMPTY),
    # references that cannot be settled
    ("delete 12", Ask("There is no task 12: you have 5 pending tasks."), CTX),
    ("delete 5", Ask("There is no task 5: the last list had 4 tasks."), LISTED),
    ("delete 4", Ask("Task 4 of that list no longer exists."), LISTED),
    ("delete 1", Ask("There is no task 1: you have no pending tasks."), EMPTY),
    ("complete it", Ask("Which task do you mean?"), LISTED),
    ("done", Ask("Which task do you mean?"), EMPTY),
    ("delete the gym", Ask("I couldn't find a task matching “the gym”."), CTX),
    (
        "delete " + "very " * 40 + "old stuff",
        Ask("I couldn't find a task matching “" + "very " * 11 + "very…”."),
        CTX,
    ),
    # help, small talk, nonsense
    ("help", Say(messages.HELP), CTX),
    ("what can you do?", Say(messages.HELP), CTX),
    ("hi", Say(messages.GREETING), CTX),
    ("good morning", Say(messages.GREETING), CTX),
    ("thanks!", Say(messages.THANKS), CTX),
    ("thank you so much", Say(messages.THANKS), CTX),
    ("bye", Say(messages.BYE), CTX),
    ("ok", Say(messages.ACK), CTX),
    ("asdfgh qwerty", Say(messages.NOT_UNDERSTOOD), CTX),
    ("milk", Say(messages.NOT_UNDERSTOOD), CTX),
    ("2", Ask("What should I do with “Buy milk powder”? For example: “done 2”"), CTX),
    ("the second one", Ask("What should I do with “Dentist appointment”?"), LISTED),
    ("9", Ask("There is no task 9"), CTX),
    ("write report", Ask("What should I do with “Write report”?"), CTX),
    ("call mom", Ask("For example: “reopen call mom” or “delete call mom”."), CTX),
    ("   ", Say(messages.EMPTY), CTX),
]
CASE_IDS = [
    f"{utterance.strip()[:60] or 'blank'}{' [listed]' if ctx is LISTED else ''}"
    f"{' [empty]' if ctx is EMPTY else ''}{' [twins]' if ctx is TWINS else ''}"
    for utterance, _, ctx in CASES
]


def test_the_table_is_large_enough() -> None:
    assert len({(u, id(c)) for u, _, c in CASES}) >= 80


@pytest.mark.parametrize(("utterance", "expected", "ctx"), CASES, ids=CASE_IDS)
def test_plan(utterance: str, expected: Expected, ctx: Context) -> None:
    check(plan(utterance, ctx), expected)


@pytest.mark.parametrize(("utterance", "expected", "ctx"), CASES, ids=CASE_IDS)
def test_planned_calls_are_valid_tool_arguments(
    utterance: str, expected: Expected, ctx: Context
) -> None:
    for call in plan(utterance, ctx).calls:
        json.dumps(call.arguments)
        TOOLS[call.name].model_validate(call.arguments)


def test_planning_is_deterministic() -> None:
    first = [plan(u, c) for u, _, c in CASES]
    assert first == [plan(u, c) for u, _, c in CASES]


# --- dates: the documented rules, from other days ---------------------------------------------


def _due(utterance: str, now: datetime) -> datetime:
    (call,) = plan(utterance, replace(CTX, now=now)).calls
    return datetime.fromisoformat(call.arguments["due_at"])


@pytest.mark.parametrize(
    ("utterance", "now", "expected"),
    [
        ("add gym friday", at(11, 27, 9, 0), at(12, 4)),  # on a Friday: a week ahead
        ("add gym next friday", at(11, 28, 9, 0), at(12, 4)),  # Saturday: next week's Friday
        ("add gym next monday", at(11, 29, 9, 0), at(11, 30)),  # Sunday: tomorrow
        ("add gym this weekend", at(11, 29, 9, 0), at(11, 29)),  # Sunday: today
        ("add gym at 9am", at(11, 23, 8, 0), at(11, 23, 9, 0)),  # still ahead: today
        ("add gym jan 5", at(12, 30, 9, 0), at(1, 5, year=2027)),  # past this year: next year
        ("add gym in 1 month", at(1, 31, 9, 0, 2027), at(2, 28, year=2027)),  # clamped
        ("add gym end of month", at(2, 10, 9, 0, 2028), at(2, 29, year=2028)),
        ("add gym the 31st", at(11, 23, 9, 0), at(12, 31)),  # November has no 31st
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_due_rules(utterance: str, now: datetime, expected: datetime) -> None:
    assert _due(utterance, now) == expected


def test_due_dates_follow_daylight_saving() -> None:
    due = _due("add gym on march 30", NOW)
    assert due.isoformat() == "2027-03-30T23:59:00+02:00"


def test_the_zone_database_is_available() -> None:
    assert datetime(2026, 7, 1, tzinfo=TZ).utcoffset() == timedelta(hours=2)
    assert NOW.utcoffset() == timedelta(hours=1)


# --- reply ----------------------------------------------------------------------------------


def record(task: TaskView) -> dict[str, Any]:
    """The task as a tool returns it: ``TaskRead.model_dump(mode="json")``."""
    return TaskRead.model_validate(
        {
            "id": task.id,
            "created_at": NOW,
            "updated_at": NOW,
            "title": task.title,
            "description": None,
            "completed": task.completed,
            "completed_at": NOW if task.completed else None,
            "priority": task.priority,
            "tags": list(task.tags),
            "due_at": task.due_at,
        }
    ).model_dump(mode="json")


def run(p: Plan, results: dict[str, TaskView | list[TaskView]] | None = None) -> list[Outcome]:
    """Outcomes as a tool runner would give them: the named task (or list) per call."""
    outcomes = []
    for call in p.calls:
        found = (results or {}).get(call.name)
        if isinstance(found, list):
            outcomes.append(Outcome(call, True, [record(t) for t in found]))
        else:
            task = found or _from_call(call)
            outcomes.append(Outcome(call, True, record(task)))
    return outcomes


def _from_call(call: Call) -> TaskView:
    arguments = call.arguments
    if "task_id" in arguments:
        task = next(t for t in TASKS if str(t.id) == arguments["task_id"])
        changed = {k: v for k, v in arguments.items() if k in {"title", "priority"}}
        if "due_at" in arguments:
            due = arguments["due_at"]
            changed["due_at"] = datetime.fromisoformat(due) if due else None
        if "tags" in arguments:
            changed["tags"] = tuple(arguments["tags"])
        return replace(task, **changed, completed=call.name == "complete_task" or task.completed)
    due = arguments.get("due_at")
    return TaskView(
        id=uuid.UUID(int=100),
        title=arguments["title"],
        completed=False,
        priority=arguments["priority"],
        tags=tuple(arguments["tags"]),
        due_at=datetime.fromisoformat(due) if due else None,
    )


def say(utterance: str, ctx: Context = CTX, **results: TaskView | list[TaskView]) -> str:
    p = plan(utterance, ctx)
    return reply(p, run(p, results), ctx)


def test_reply_added_with_a_relative_due_date() -> None:
    assert say("add buy milk tomorrow") == "Added “Buy milk”, due tomorrow (Tue 24 Nov)."


def test_reply_added_with_time_priority_and_tags() -> None:
    text = say("add pay rent friday at 5pm high priority #home")
    assert (
        text == "Added “Pay rent”, due Friday (Fri 27 Nov) at 17:00, high priority, tagged #home."
    )


def test_reply_added_far_ahead_shows_the_calendar_date() -> None:
    assert say("add renew lease on dec 3") == "Added “Renew lease”, due Dec 3."


def test_reply_added_several() -> None:
    assert say("add milk, eggs and bread") == "Added 3 tasks: “Milk”, “Eggs” and “Bread”."
    assert say("add milk, eggs and bread tomorrow #shop") == (
        "Added 3 tasks, all due tomorrow (Tue 24 Nov), tagged #shop: “Milk”, “Eggs” and “Bread”."
    )
    assert say("add call mom friday, buy eggs") == (
        "Added 2 tasks: “Call mom” (due Friday) and “Buy eggs”."
    )


def test_reply_added_today_needs_no_calendar_date() -> None:
    assert say("add call Anna tonight at 10") == "Added “Call Anna”, due today at 22:00."


def test_reply_lists_with_numbers_in_the_order_returned() -> None:
    shown = [PASSPORT, MILK, REPORT]
    text = say("what's left", list_tasks=shown)
    assert text == (
        "You have 3 pending tasks:\n"
        "1. Renew passport (due Nov 20, overdue, low)\n"
        "2. Buy milk (due tomorrow) #home\n"
        "3. Write report (high) #work"
    )


def test_reply_lists_everything_with_counts() -> None:
    text = say("list everything", list_tasks=[DENTIST, MOM])
    assert text == (
        "You have 2 tasks (1 pending, 1 done):\n"
        "1. Dentist appointment (due Wednesday at 17:00)\n"
        "2. Call mom (done)"
    )


def test_reply_lists_completed_tasks_without_marking_each() -> None:
    assert say("what have I done", list_tasks=[MOM, RENT]) == (
        "You have 2 completed tasks:\n1. Call mom\n2. Pay rent #home #bills"
    )


def test_reply_list_with_a_tag_says_so() -> None:
    assert say("#home tasks", list_tasks=[MILK]).startswith("You have 1 pending task tagged #home:")


@pytest.mark.parametrize(
    ("utterance", "expected"),
    [
        ("what's left", "You have no pending tasks."),
        ("what's overdue", "You have no overdue tasks."),
        ("completed tasks", "You have no completed tasks."),
        ("high priority tasks", "You have no high-priority pending tasks."),
    ],
)
def test_reply_empty_list(utterance: str, expected: str) -> None:
    assert say(utterance, list_tasks=[]) == expected


def test_reply_completed() -> None:
    assert say("mark 1 done") == "Marked “Buy milk” as done."
    assert say("check off 1 and 3") == "Marked “Buy milk” and “Dentist appointment” as done."


def test_reply_reopened_and_deleted() -> None:
    assert say("reopen call mom") == "Reopened “Call mom”: it's no longer marked as done."
    assert say("delete 3") == "Deleted “Dentist appointment”."
    assert say("clear completed") == "Deleted 2 tasks: “Call mom” and “Pay rent”."


def test_reply_updated() -> None:
    assert say("rename 2 to buy oat milk") == "Renamed “Buy milk powder” to “Buy oat milk”."
    assert say("move dentist to friday") == (
        "“Dentist appointment” is now due Friday (Fri 27 Nov) at 17:00."
    )
    assert say("make it low priority") == "“Write report” is now low priority."
    assert say("tag 4 with #urgent") == "“Write report” is now tagged #work #urgent."
    assert say("remove the due date of 1") == "“Buy milk” no longer has a due date."
    assert say("make 1 and 2 high priority") == (
        "“Buy milk” and “Buy milk powder” are now high priority."
    )


def test_reply_not_found() -> None:
    p = plan("delete 3", CTX)
    outcome = Outcome(p.calls[0], ok=False, result=None, error="task not found")
    assert reply(p, [outcome], CTX) == "I couldn't find that task."


def test_reply_groups_failures_with_the_same_error() -> None:
    p = plan("clear completed", CTX)
    error = "too many tool calls in one turn (>16)"
    outcomes = [Outcome(c, ok=False, result=None, error=error) for c in p.calls]
    assert reply(p, outcomes, CTX) == f"I couldn't delete “Call mom” and “Pay rent”: {error}."


def test_reply_mixes_successes_and_failures_in_order() -> None:
    p = plan("check off 1 and 3", CTX)
    done, gone = p.calls
    outcomes = [
        Outcome(done, ok=True, result=record(replace(MILK, completed=True))),
        Outcome(gone, ok=False, result=None, error="task not found"),
    ]
    assert reply(p, outcomes, CTX) == "Marked “Buy milk” as done. I couldn't find that task."


def test_reply_other_error_names_the_task() -> None:
    p = plan("add buy milk", CTX)
    outcome = Outcome(p.calls[0], ok=False, result=None, error="too many tasks")
    assert reply(p, [outcome], CTX) == "I couldn't add “Buy milk”: too many tasks."


def test_reply_says_questions_and_texts_as_planned() -> None:
    assert say("clear completed", EMPTY) == "You have no completed tasks to clear."
    assert say("delete milk") == f"{WHICH_MILK.part} For example: “delete 1”."
    assert say("help") == messages.HELP


def test_reply_is_deterministic() -> None:
    p = plan("what's left", CTX)
    outcomes = run(p, {"list_tasks": [MILK, PASSPORT]})
    assert reply(p, outcomes, CTX) == reply(p, outcomes, CTX)
