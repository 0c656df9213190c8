"""A conversation created with its first messages: one unit, all or nothing."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text

import convstore
from convstore import Store, UserScope
from tests.factories import make_conversation, make_messages, tool_turn
from tests.support.api import Account


async def _conversations(store: Store, user_id: uuid.UUID) -> int:
    async with store.db.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM conversations WHERE user_id = :u"),
            {"u": user_id if store.db.dialect == "postgresql" else user_id.hex},
        )
        return int(found.scalar_one())


async def test_the_first_messages_come_with_it(me: UserScope) -> None:
    conv = await me.conversations.create(
        messages=[
            {"role": "system", "content": "You are terse."},
            *tool_turn("call_9", title="buy bread"),
        ]
    )
    assert conv.messages_count == 5
    assert conv.title == "add buy bread tomorrow", "the first user message gives the title"
    assert conv.last_message_at == conv.created_at
    history = await me.messages.history(conv.id)
    assert [(m.seq, m.role) for m in history] == [
        (1, "system"),
        (2, "user"),
        (3, "assistant"),
        (4, "tool"),
        (5, "assistant"),
    ]
    assert history[2].tool_calls is not None
    assert history[2].tool_calls[0].id == "call_9"
    assert history[3].tool_call_id == "call_9"
    assert history[4].usage == {"prompt_tokens": 31, "completion_tokens": 7, "total_tokens": 38}
    assert await me.conversations.get(conv.id) == conv
    (after,) = await make_messages(me, conv.id, 1)
    assert after.seq == 6


async def test_a_title_given_stays(me: UserScope) -> None:
    conv = await me.conversations.create(
        title="mine", key="k-first", messages=[{"role": "user", "content": "hello"}]
    )
    assert (conv.title, conv.key, conv.messages_count) == ("mine", "k-first", 1)
    assert (await me.conversations.get_by_key("k-first")).id == conv.id


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        (
            [{"role": "user", "content": "ok"}, {"role": "user", "content": "  "}],
            "messages.1.content",
        ),
        ([{"role": "tool", "content": "x"}], "messages.0.tool_call_id"),
        ([{"role": "robot", "content": "x"}], "messages.0.role"),
    ],
)
async def test_an_invalid_message_creates_nothing(
    store: Store, me: UserScope, messages: list[dict[str, str]], field: str
) -> None:
    before = await _conversations(store, me.user_id)
    with pytest.raises(convstore.InvalidInput) as refused:
        await me.conversations.create(messages=messages)
    assert any(name.startswith(field) for name in refused.value.fields), refused.value.fields
    assert await _conversations(store, me.user_id) == before


async def test_a_parent_is_refused(store: Store, me: UserScope) -> None:
    other = await make_conversation(me)
    (parent,) = await make_messages(me, other.id, 1)
    before = await _conversations(store, me.user_id)
    with pytest.raises(convstore.InvalidInput) as refused:
        await me.conversations.create(
            messages=[{"role": "user", "content": "x", "parent_id": str(parent.id)}]
        )
    assert refused.value.fields == ["messages.0.parent_id"]
    assert await _conversations(store, me.user_id) == before


async def test_a_refusal_of_the_database_stores_none_of_it(store: Store, me: UserScope) -> None:
    await me.conversations.create(key="taken")
    before = await _conversations(store, me.user_id)
    with pytest.raises(convstore.Conflict):  # the key of a live conversation
        await me.conversations.create(key="taken", messages=[{"role": "user", "content": "a"}])
    twice = [*tool_turn("call_1"), {"role": "tool", "tool_call_id": "call_1", "content": "again"}]
    with pytest.raises(convstore.Conflict):  # a second answer to one tool call
        await me.conversations.create(messages=twice)
    assert await _conversations(store, me.user_id) == before


async def test_over_http(client: httpx.AsyncClient, alice: Account) -> None:
    headers = alice.headers
    created = await client.post(
        "/api/v1/conversations",
        json={
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
            ]
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["messages_count"], body["title"]) == (2, "hi")
    page = await client.get(f"/api/v1/conversations/{body['id']}/messages", headers=headers)
    assert [m["content"] for m in page.json()["items"]] == ["Be brief.", "hi"]
    refused = await client.post(
        "/api/v1/conversations",
        json={"messages": [{"role": "user", "content": "x", "parent_id": body["id"]}]},
        headers=headers,
    )
    assert refused.status_code == 422
    assert "messages.0.parent_id" in refused.text
