"""The library's headline example works end to end on each backend."""

from __future__ import annotations

from convstore import UserScope
from tests.factories import make_conversation, make_messages


async def test_append_then_history_returns_messages_in_order(me: UserScope) -> None:
    conv = await make_conversation(me)
    stored = await make_messages(me, conv.id, 6)
    history = await me.messages.history(conv.id)
    assert [m.seq for m in history] == [1, 2, 3, 4, 5, 6]
    assert [m.id for m in history] == [m.id for m in stored]
    assert (await me.conversations.get(conv.id)).messages_count == 6
