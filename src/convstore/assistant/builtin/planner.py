"""``plan()``: one utterance to tool calls, a question or a text, by ordered patterns.

Order (the first that applies wins): small talk and help; "done" alone (completes ``it``);
"clear completed"; "delete everything" (refused with a text); list requests
(:mod:`.queries`); tags; priority; due date (a move without a date asks when); rename and
"change X to Y" (a priority, a date or else a title); reopen; complete; delete; add; "I bought
the milk" (completes the pending task matching "buy the milk", if one does); a reference alone
("2", "buy milk") asks what to do with it; else a text saying what works.

After "remind me to"/"don't forget to" everything is a new task; after "I need to"/"I have to"
too, unless a command word follows ("I want to see my tasks"): then the command, or a new task
when it is not understood ("I have to move the car").
"""

from __future__ import annotations

import re
from collections.abc import Callable

from convstore.assistant.builtin import actions, messages
from convstore.assistant.builtin.context import Call, Context, Plan, ask, say
from convstore.assistant.builtin.dates import COUNT, count, parse_due
from convstore.assistant.builtin.queries import list_arguments
from convstore.assistant.builtin.refs import PAST_TENSE, resolve, stem
from convstore.assistant.builtin.text import normalize, strip_filler

Handler = Callable[[re.Match[str], Context], Plan | None]
Rule = tuple[re.Pattern[str], Handler]


def _rules(*pairs: tuple[str, Handler]) -> tuple[Rule, ...]:
    return tuple((re.compile(p, re.IGNORECASE), h) for p, h in pairs)


def _text(text: str) -> Handler:
    return lambda m, ctx: say(text)


def _text_ask(question: str) -> Handler:
    return lambda m, ctx: ask(question)


def _act(name: str, group: str = "ref") -> Handler:
    return lambda m, ctx: actions.act(name, m[group] if group else "it", ctx)


SMALL_TALK = _rules(
    (
        r"(?:hi|hello|hey|hiya|howdy|yo|hallo|greetings|good\s+(?:morning|afternoon|evening|day))"
        r"(?:\s+there)?(?:[\s,]+(?:bot|assistant|buddy|friend))?",
        _text(messages.GREETING),
    ),
    (
        r"(?:(?:ok(?:ay)?|great|cool|perfect|awesome|nice|lovely|brilliant)[\s,]+)?"
        r"(?:thanks?|thank\s+you|thx|ty|cheers|much\s+appreciated)"
        r"(?:\s+(?:a\s+lot|so\s+much|very\s+much|again|mate))?",
        _text(messages.THANKS),
    ),
    (
        r"(?:bye|goodbye|bye\s+bye|see\s+you(?:\s+later)?|see\s+ya|good\s*night|later|cya)",
        _text(messages.BYE),
    ),
    (
        r"(?:ok(?:ay)?|great|cool|perfect|awesome|nice|good|got\s+it|sounds\s+good|alright|fine"
        r"|sure|yes|yep|no|nope|nothing|never\s*mind|nvm)",
        _text(messages.ACK),
    ),
    (
        r"(?:help(?:\s+me)?|\?+|what\s+can\s+(?:you|i)\s+do|what\s+do\s+you\s+do"
        r"|how\s+does\s+(?:this|it)\s+work|how\s+do\s+i\s+use\s+(?:this|you)"
        r"|(?:what\s+are\s+(?:the|your)\s+)?commands"
        r"|who\s+are\s+you|what\s+are\s+you|options|menu|usage|instructions)",
        _text(messages.HELP),
    ),
)

_TAGS = r"(?P<tags>#\S+(?:[\s,]+(?:and\s+)?#\S+)*)"
_PRIO = (
    r"(?P<prio>(?:an?\s+)?(?:(?:high|highest|top|low|lowest|medium|normal)(?:[\s-]+prio(?:rity)?)?"
    r"|urgent|important|not\s+urgent|not\s+important|priority))"
)
_COMPLETED = r"(?:done|complete|completed|finished|checked(?:\s+off)?|ticked(?:\s+off)?|closed)"


def _clear(m: re.Match[str], ctx: Context) -> Plan | None:
    return actions.clear_completed(ctx)


def _list(m: re.Match[str], ctx: Context) -> Plan | None:
    arguments = list_arguments(m.group(), ctx)
    return Plan(calls=(Call("list_tasks", arguments),)) if arguments else None


def _tag(m: re.Match[str], ctx: Context) -> Plan | None:
    return actions.add_tags(m["ref"], m["tags"], ctx)


def _untag(m: re.Match[str], ctx: Context) -> Plan | None:
    return actions.remove_tags(m["ref"], m["tags"], ctx)


def _priority(m: re.Match[str], ctx: Context) -> Plan | None:
    level = actions.priority_level(m["prio"])
    return actions.set_priority(m["ref"], level, ctx) if level else None


def _fixed_priority(level: str) -> Handler:
    return lambda m, ctx: actions.set_priority(m["ref"], level, ctx)


def _clear_due(m: re.Match[str], ctx: Context) -> Plan | None:
    return actions.clear_due(m["ref"], ctx)


def _due(m: re.Match[str], ctx: Context) -> Plan | None:
    due = parse_due(m["when"], ctx.local_now)
    if due is None:
        return ask(messages.bad_date(m["when"]))
    return actions.set_due(resolve(m["ref"], ctx), due, ctx)


def _move(m: re.Match[str], ctx: Context) -> Plan | None:
    joiner = r"\s+(?:to|until|till|for|on|by)\s+"
    dated = actions.split_ref(
        m["body"], ctx, joiner, lambda s: parse_due(s, ctx.local_now) is not None
    )
    if dated is not None and dated[0].found:
        due = parse_due(dated[1], ctx.local_now)
        return actions.set_due(dated[0], due, ctx) if due else None
    other = actions.split_ref(m["body"], ctx, joiner)
    if other is not None and other[0].found:
        return ask(messages.bad_date(other[1]))
    if dated is not None:
        return actions.question(dated[0])
    found = resolve(m["body"], ctx) if other is None else None
    return ask(messages.when_due(found.tasks[0].title)) if found and found.found else None


def _postpone(m: re.Match[str], ctx: Context) -> Plan | None:
    days = count(m["n"]) * (7 if m["unit"].lower().startswith("week") else 1)
    return actions.postpone(m["ref"], days, ctx)


def _rename(m: re.Match[str], ctx: Context) -> Plan | None:
    split = actions.split_ref(m["body"], ctx, r"\s+(?:to|into|as)\s+")
    return actions.rename(*split, ctx) if split is not None else None


def _change(m: re.Match[str], ctx: Context) -> Plan | None:
    split = actions.split_ref(m["body"], ctx, r"\s+(?:to|into)\s+")
    if split is None or not split[0].found:
        return None
    return actions.change(split[0], split[1], ctx)


def _add(m: re.Match[str], ctx: Context) -> Plan | None:
    return actions.add(m["body"], ctx)


def _past_tense(m: re.Match[str], ctx: Context) -> Plan | None:
    verb = m["verb"].lower()
    if verb not in PAST_TENSE and not (verb.endswith("ed") and len(verb) > 4):
        return None
    return actions.complete_by_title(f"{stem(verb)} {m['rest']}", ctx)


_VERB_CLEAR = (
    r"(?:clear|clean(?:\s+up)?|remove|delete|purge|archive|get\s+rid\s+of|wipe|erase|drop)"
)
_VERB_DELETE = (
    r"(?:delete|remove|drop|erase|trash|cancel|discard|scrap|scratch|kill|nuke|get\s+rid\s+of"
    r"|throw\s+(?:away|out)|forget(?:\s+about)?)"
)
_VERB_MOVE = r"(?:move|reschedule|postpone|push(?:\s+back)?|shift|delay|defer|bump|schedule)"
_VERB_REOPEN = (
    r"(?:reopen|re-open|undo|unmark|uncheck|untick|uncomplete|un-complete|restore|unfinish"
    r"|revive|bring\s+back)"
)
_VERB_COMPLETE = (
    r"(?:i(?:'ve|\s+have)?\s+)?(?:just\s+|already\s+|finally\s+)?(?:done\s+with|finished\s+with"
    r"|finish|finished|complete|completed|did|close|closed|accomplished)"
)
_VERB_ADD = (
    r"(?:add|create|insert|put|note(?:\s+down)?|jot(?:\s+down)?|write\s+down|log|set\s+up|schedule"
    r"|make\s+(?:a|an)(?=\s+(?:new\s+)?(?:task|todo|to-do|reminder)))"
)
_TASK_NOUN = r"(?:task|todo|to-do|item|reminder|entry)"
_IS = r"(?:'s|\s+is|\s+are|\s+was)"
_NOT_DONE = (
    r"(?:not\s+(?:yet\s+)?(?:done|complete|completed|finished)|undone|incomplete|unfinished"
    r"|uncompleted|pending|open|to\s*do|to-do|active)"
)
_DUE_WORD = r"(?:due\s*date|deadline|due\s+time|date|due)"

RULES = _rules(
    # "done" alone, clearing, refusing to delete everything
    (
        r"(?:(?:i'?m\s+|i\s+am\s+|all\s+)?done|finished|(?:i\s+)?did\s+it|got\s+it\s+done)",
        _act("complete_task", ""),
    ),
    (
        rf"{_VERB_CLEAR}(?:\s+out)?(?:\s+all)?(?:\s+(?:of\s+)?(?:the|my))?\s+(?:completed|complete"
        r"|done|finished|checked(?:\s+off)?|ticked(?:\s+off)?)"
        r"(?:\s+(?:tasks?|todos?|to-dos?|items?|ones|stuff))?",
        _clear,
    ),
    (
        r"(?:clear|delete|remove|wipe|erase|purge)\s+(?:all|everything|every\s+task"
        r"|(?:my|the)\s+(?:whole\s+|entire\s+)?list)(?:\s.*)?",
        _text(messages.DELETE_ALL),
    ),
    # lists
    (r".+", _list),
    # tags
    (r"(?:tag|label)\s+(?P<ref>.+?)\s+(?:with|as)\s+(?P<tags>.+)", _tag),
    (rf"(?:tag|label)\s+(?P<ref>.+?)\s+{_TAGS}", _tag),
    (
        r"(?:add|put|attach)\s+(?:the\s+)?(?:tags?|labels?)\s+(?P<tags>.+?)"
        r"\s+(?:to|on)\s+(?P<ref>.+)",
        _tag,
    ),
    (rf"(?:add|put|attach)\s+{_TAGS}\s+(?:to|on)\s+(?P<ref>.+)", _tag),
    (rf"(?:untag|unlabel)\s+(?P<ref>.+?)\s+{_TAGS}", _untag),
    (
        r"(?:untag|remove|delete|drop|take)\s+(?:the\s+)?(?:(?:tags?|labels?)\s+)?"
        rf"{_TAGS}\s+(?:from|off|of)\s+(?P<ref>.+)",
        _untag,
    ),
    (
        r"(?:remove|delete|drop|take)\s+(?:the\s+)?(?P<tags>\S+)\s+(?:tag|label)"
        r"\s+(?:from|off|of)\s+(?P<ref>.+)",
        _untag,
    ),
    (
        r"(?:add|put|attach)\s+(?:the\s+|a\s+)?(?P<tags>\S+)\s+(?:tag|label)"
        r"\s+(?:to|on)\s+(?P<ref>.+)",
        _tag,
    ),
    (
        r"(?:untag|remove|delete|drop)\s+(?:the\s+)?(?:tags?|labels?)\s+(?P<tags>\S+)"
        r"\s+from\s+(?P<ref>.+)",
        _untag,
    ),
    # priority
    (
        r"(?:set|change|make|update)\s+(?:the\s+)?priority\s+(?:of|for|on)\s+(?P<ref>.+?)"
        rf"\s+to\s+{_PRIO}",
        _priority,
    ),
    (
        r"(?:make|mark|set|flag|change|put|bump|give|move)\s+(?P<ref>.+?)"
        rf"\s+(?:as\s+|to\s+|at\s+|with\s+)?(?:the\s+)?{_PRIO}",
        _priority,
    ),
    (r"prioriti[sz]e\s+(?P<ref>.+)", _fixed_priority("high")),
    (r"de-?prioriti[sz]e\s+(?P<ref>.+)", _fixed_priority("low")),
    (rf"(?P<ref>.+?)(?:'s|\s+is)\s+(?:now\s+|very\s+|really\s+|super\s+)?{_PRIO}", _priority),
    # due dates
    (
        r"(?:remove|clear|delete|drop|unset)\s+(?:the\s+)?(?:due\s*date|deadline)"
        r"\s+(?:of|from|for|on)\s+(?P<ref>.+)",
        _clear_due,
    ),
    (
        rf"(?:set|change|update|move|make|put)\s+(?:the\s+)?{_DUE_WORD}\s+(?:of|for|on)"
        r"\s+(?P<ref>.+?)\s+(?:to|as|for|on)\s+(?P<when>.+)",
        _due,
    ),
    (
        r"(?:postpone|push(?:\s+back)?|delay|defer|bump)\s+(?P<ref>.+?)\s+(?:back\s+)?by"
        rf"\s+(?P<n>{COUNT})\s+(?P<unit>days?|weeks?)",
        _postpone,
    ),
    (rf"{_VERB_MOVE}\s+(?P<body>.+)", _move),
    (r"(?:make|set)\s+(?P<ref>.+?)\s+due\s+(?P<when>.+)", _due),
    (r"(?P<ref>.+?)(?:'s|\s+is)\s+(?:now\s+)?due\s+(?P<when>.+)", _due),
    # titles, and "change X to Y"
    (r"(?:rename|retitle|rephrase)\s+(?P<body>.+)", _rename),
    (
        r"(?:change|update|edit|set|correct|fix)\s+(?:the\s+)?(?:title|name|text|wording)"
        r"\s+(?:of|for|on)\s+(?P<body>.+)",
        _rename,
    ),
    (r"(?:change|update|edit|correct|fix|set)\s+(?P<body>.+)", _change),
    # reopen
    (rf"{_VERB_REOPEN}\s+(?P<ref>.+)", _act("reopen_task")),
    (r"(?:undo|reopen|oops|undo\s+(?:that|it))", _act("reopen_task", "")),
    (
        rf"(?:mark|set|flag|put)\s+(?P<ref>.+?)\s+(?:as\s+|back\s+(?:to\s+|as\s+)?)?{_NOT_DONE}",
        _act("reopen_task"),
    ),
    (
        r"(?P<ref>.+?)(?:\s+is|\s+was|\s+are|'s)(?:n't|\s+not)\s+(?:really\s+)?"
        r"(?:done|finished|complete|completed)(?:\s+yet|\s+after\s+all)?",
        _act("reopen_task"),
    ),
    (
        r"i\s+(?:didn't|did\s+not|haven't|have\s+not)\s+(?:actually\s+|really\s+)?"
        r"(?:finish|finished|complete|completed|do|done)\s+(?P<ref>.+)",
        _act("reopen_task"),
    ),
    # complete
    (rf"(?:mark|set|flag)\s+(?P<ref>.+?)\s+(?:as\s+)?{_COMPLETED}", _act("complete_task")),
    (r"(?:check|tick|cross|strike)\s+off\s+(?P<ref>.+)", _act("complete_task")),
    (
        r"(?:check|tick|cross|strike)\s+(?P<ref>.+?)\s+off(?:\s+(?:my|the)\s+list)?",
        _act("complete_task"),
    ),
    (rf"{_VERB_COMPLETE}\s+(?P<ref>.+)", _act("complete_task")),
    (
        rf"(?P<ref>.+?){_IS}\s+(?:now\s+|all\s+|finally\s+)?(?:done|finished|complete|completed"
        r"|taken\s+care\s+of|sorted|handled)",
        _act("complete_task"),
    ),
    (r"done\s*[:\-]?\s+(?P<ref>.+)", _act("complete_task")),
    (r"(?P<ref>.+?)\s+(?:done|finished|completed)", _act("complete_task")),
    # delete
    (rf"{_VERB_DELETE}\s+(?P<ref>.+)", _act("delete_task")),
    # add
    (
        r"(?:add|create|new)(?:\s+(?:a\s+)?(?:new\s+)?(?:task|todo|to-do|reminder))?",
        _text_ask(messages.NO_TITLE),
    ),
    (
        rf"{_VERB_ADD}(?:\s+(?:a|an))?(?:\s+new)?(?:\s+{_TASK_NOUN})?"
        r"(?:\s*[:\-]\s*|\s+(?:to|that|called|named|saying|for)\s+|\s+)(?P<body>.+)",
        _add,
    ),
    (rf"(?:new|another)\s+{_TASK_NOUN}\s*[:\-]?\s*(?P<body>.+)", _add),
    (r"(?:task|todo|to-do|reminder)\s*[:\-]\s*(?P<body>.+)", _add),
    (
        r"(?P<body>(?:urgent|important|asap|high\s+priority|low\s+priority|someday)\s*[:\-!]\s*.+)",
        _add,
    ),
    # "I bought the milk"
    (
        r"i(?:'ve|\s+have)?\s+(?:just\s+|already\s+|finally\s+)?(?P<verb>[a-z]+)\s+(?P<rest>.+)",
        _past_tense,
    ),
    # "2" alone, or a task's title alone
    (r".+", lambda m, ctx: actions.bare_reference(m.group(), ctx)),
)
"""Tried in order with ``fullmatch``; a handler returning None passes to the next rule."""


def _apply(rules: tuple[Rule, ...], text: str, ctx: Context) -> Plan | None:
    for pattern, handler in rules:
        if (m := pattern.fullmatch(text)) and (result := handler(m, ctx)) is not None:
            return result
    return None


def plan(utterance: str, ctx: Context) -> Plan:
    """Decide what to do about one user utterance (pure: no I/O, deterministic).

    Args:
        utterance: What the user wrote.
        ctx: The user's tasks, the last list shown, the last task talked about, and the clock.

    Returns:
        Tool calls to run in order; or a question when the request is ambiguous (nothing is
        guessed); or a text for help, small talk and what is not understood.
    """
    text = normalize(utterance)
    if not text:
        return say(messages.EMPTY)
    if (small := _apply(SMALL_TALK, text, ctx)) is not None:
        return small
    cleaned = strip_filler(text)
    if cleaned.add in {"strong", "weak"}:
        return actions.add(cleaned.text, ctx)
    if (result := _apply(RULES, cleaned.text, ctx)) is not None:
        return result
    if cleaned.add == "maybe":
        return actions.add(cleaned.text, ctx)
    return _apply(SMALL_TALK, cleaned.text, ctx) or say(messages.NOT_UNDERSTOOD)
