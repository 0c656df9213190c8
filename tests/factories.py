"""Factories: plain async functions that make realistic rows through the public API."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from typing import Any

from convstore import Store, UserScope
from convstore.conversations.schemas import ConversationRead, MessageRead
from convstore.kit.types import utc_now
from convstore.tasks.schemas import TaskRead
from convstore.users.schemas import UserRead

_counter = itertools.count(1)


async def make_user(store: Store, *, password: str | None = None, **fields: Any) -> UserRead:
    """A user with a unique email; no password unless given (hashing is deliberately slow)."""
    n = next(_counter)
    fields.setdefault("email", f"user{n}-{uuid.uuid4().hex[:8]}@example.com")
    fields.setdefault("name", f"User {n}")
    return await store.users.create(password=password, **fields)


async def make_conversation(me: UserScope, **fields: Any) -> ConversationRead:
    fields.setdefault("title", f"Conversation {next(_counter)}")
    fields.setdefault("metadata", {"model": "test-model"})
    return await me.conversations.create(**fields)


def tool_turn(call_id: str | None = None, *, title: str = "buy milk") -> list[dict[str, Any]]:
    """A whole assistant turn: user request, tool call, tool result, final answer."""
    call_id = call_id or f"call_{uuid.uuid4().hex[:12]}"
    return [
        {"role": "user", "content": f"add {title} tomorrow"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": call_id,
                    "name": "add_task",
                    "arguments": {"title": title, "due": "tomorrow"},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": call_id,
            "content": '{"ok": true}',
            "tool_results": [{"tool_call_id": call_id, "output": {"ok": True}}],
        },
        {
            "role": "assistant",
            "content": f"Added “{title}”.",
            "usage": {"prompt_tokens": 31, "completion_tokens": 7, "total_tokens": 38},
        },
    ]


async def make_messages(
    me: UserScope, conversation_id: uuid.UUID, count: int = 4
) -> list[MessageRead]:
    """``count`` messages: whole tool turns, then plain user messages to make up the count."""
    items: list[dict[str, Any]] = []
    while len(items) + 4 <= count:
        items.extend(tool_turn())
    items.extend({"role": "user", "content": f"message {i}"} for i in range(count - len(items)))
    return await me.messages.append_many(conversation_id, items)


async def make_task(me: UserScope, **fields: Any) -> TaskRead:
    fields.setdefault("title", f"Task {next(_counter)}")
    fields.setdefault("priority", "medium")
    fields.setdefault("tags", ["home"])
    fields.setdefault("due_at", utc_now() + timedelta(days=1))
    return await me.tasks.create(**fields)
