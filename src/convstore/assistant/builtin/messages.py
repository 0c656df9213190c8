"""The fixed texts of the builtin assistant (help, small talk, refusals)."""

from __future__ import annotations

from convstore.assistant.builtin.context import TaskView
from convstore.assistant.builtin.text import join_and, shorten

EXAMPLES = (
    "• “add buy milk tomorrow at 5pm #home” (also “remind me to call mom on friday”)\n"
    "• “what's on my list?”, “show completed tasks”, “what's overdue?”, “#work tasks”\n"
    "• “mark 2 done”, “finish buy milk”, “check off 1 and 3”\n"
    "• “move 1 to friday”, “make it high priority”, “tag 1 with #home”\n"
    "• “rename 2 to buy oat milk”, “reopen 2”, “delete 3”, “clear completed”"
)
HELP = f"I keep your to-do list. You can say things like:\n{EXAMPLES}"
GREETING = (
    "Hi! I can keep track of your tasks. Try “add buy milk tomorrow” or “what's on my list?”."
)
THANKS = "You're welcome!"
ACK = "Okay! Anything else I can do for your tasks?"
BYE = "Bye! Your tasks will be here when you come back."
NOT_UNDERSTOOD = (
    f"Sorry, I didn't understand that. I can manage your tasks, for example:\n{EXAMPLES}"
)
EMPTY = "I'm listening: tell me what to add or ask “what's on my list?”."
NO_TITLE = "What should the task be called? For example: “add buy milk tomorrow”."
NO_DONE = "You have no completed tasks to clear."
DELETE_ALL = (
    "To keep your list safe I delete tasks one at a time: tell me which ones "
    "(“delete 2 and 3”), or say “clear completed” to remove the done ones."
)
ONE_AT_A_TIME = "I can rename one task at a time."
NO_TAG = "Which tag should I add? For example: “tag 1 with #home”."


def bad_date(text: str) -> str:
    """The question asked when a new due date is not understood."""
    return (
        f"When should it be due? I didn't understand “{shorten(text)}”; "
        "try “tomorrow”, “friday at 5pm” or “2026-12-01”."
    )


def already_done(title: str) -> str:
    """Completing a task that is done."""
    return f"“{title}” is already done."


def not_done(title: str) -> str:
    """Reopening a task that is not done."""
    return f"“{title}” isn't marked as done, so there is nothing to reopen."


def no_such_tags(title: str, tags: str) -> str:
    """Removing tags a task does not have."""
    return f"“{title}” isn't tagged {tags}."


def too_many(count: int, limit: int) -> str:
    """Adding more tasks at once than allowed."""
    return f"That's {count} tasks at once; I can add up to {limit} per message. Could you split it?"


def what_to_do(task: TaskView, ref: str) -> str:
    """A bare reference ("2"): ask what to do with the task."""
    verbs = ("reopen", "delete") if task.completed else ("done", "delete")
    examples = [f"“{verb} {ref}”" for verb in verbs]
    if not task.completed:
        examples.append(f"“move {ref} to friday”")
    return f"What should I do with “{task.title}”? For example: {join_and(examples, 'or')}."


def when_due(title: str) -> str:
    """Moving a task without saying where to."""
    return f"When should “{title}” be due? For example: “move it to friday at 5pm”."
