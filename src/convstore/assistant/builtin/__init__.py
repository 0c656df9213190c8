"""The language core of the ``builtin`` assistant: offline, deterministic, no network, no ML.

Pure functions, no database access: ``plan()`` turns one utterance and a :class:`Context` into
tool calls (or a question, or a text); ``reply()`` turns the outcomes of those calls into the
sentence the user reads. The rules each module follows are stated in its docstring:

- :mod:`.dates`: due phrases ("friday" is the next Friday after today, "next friday" the
  Friday of next week, "next week" next Monday, a date without a time is due at 23:59 local).
- :mod:`.parse`: new tasks (title, priority words, ``#tags``, lists like "milk, eggs and bread").
- :mod:`.refs`: which task "2", "the last one", "it" or "the milk" means; ambiguity is asked.
- :mod:`.queries`: list requests ("what's left?", "completed tasks", "#work tasks").
- :mod:`.planner`: the order in which requests are recognised.
- :mod:`.actions`: the calls each request makes.
- :mod:`.reply`: the wording of the answer.
- :mod:`.text` (polite filler, titles) and :mod:`.messages` (fixed texts).

The caller keeps the conversation state: after a ``list_tasks`` call it stores the listed ids
as ``Context.last_listing``, and it sets ``Context.last_task`` to the task last added, changed
or mentioned. A question that numbers candidates uses their numbers in that same listing (or,
before any list, in the pending tasks), so an answer like "2" needs no extra state.
"""

from __future__ import annotations

from convstore.assistant.builtin.context import Call, Context, Outcome, Plan, TaskView
from convstore.assistant.builtin.planner import plan
from convstore.assistant.builtin.reply import reply

__all__ = ["Call", "Context", "Outcome", "Plan", "TaskView", "plan", "reply"]
