"""Items through the library: every kind round-trips as given, in one order with messages,
paged both ways, removed by pop/delete/clear, bounded, isolated."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from convstore import UserScope
from convstore.errors import Conflict, InvalidInput, NotFound
from convstore.items.views import openai_item

EVERY_KIND: list[dict[str, Any]] = [
    {"type": "message", "role": "user", "content": "Hi there"},
    {"role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
    {"type": "message", "role": "system", "content": "You add tasks."},
    {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "detail": "auto", "image_url": "data:image/png;base64,AAAA"},
            {"type": "input_file", "file_id": "file_123", "filename": "a.pdf"},
        ],
    },
    {
        "type": "reasoning",
        "id": "rs_abc",
        "summary": [{"type": "summary_text", "text": "The user wants a task."}],
        "encrypted_content": "gAAAAB…opaque",
    },
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "add_task",
        "arguments": '{"title": "buy milk"}',
    },
    {"type": "function_call_output", "call_id": "call_1", "output": '{"id": 1}'},
    {
        "type": "function_call_output",
        "call_id": "call_2",
        "output": [{"type": "input_text", "text": "done"}],
    },
    {
        "type": "message",
        "id": "msg_given",
        "role": "assistant",
        "status": "completed",
        "content": [
            {"type": "output_text", "text": "Added **buy milk**.", "annotations": []},
            {"type": "refusal", "refusal": "I won't do the other thing."},
        ],
    },
    {"type": "web_search_call", "id": "ws_1", "status": "searching", "action": {"q": "x"}},
    {"type": "mcp_call", "id": "mcp_1", "server_label": "s", "name": "t", "arguments": "{}"},
    {"type": "x-custom.kind", "payload": {"deep": [1, 2.5, None, True, "ü 😀"]}},
]


async def test_every_kind_round_trips_as_given_in_order(me: UserScope) -> None:
    conv = await me.conversations.create()
    given = copy.deepcopy(EVERY_KIND)
    added = await me.items.add(conv.id, given)
    assert [a.item for a in added] == EVERY_KIND
    page = await me.items.list(conv.id, limit=100)
    assert [i.item for i in page.items] == EVERY_KIND
    assert [i.id for i in page.items] == [a.id for a in added]
    assert page.has_more is False
    # Given ids are kept; missing ones are assigned by type.
    ids = [a.id for a in added]
    assert ids[4] == "rs_abc"
    assert ids[8] == "msg_given"
    assert ids[9] == "ws_1"
    assert ids[0].startswith("msg_")
    assert ids[5].startswith("fc_")
    assert ids[6].startswith("fco_")
    assert ids[11].startswith("itm_")
    assert [a.seq for a in added] == list(range(1, len(EVERY_KIND) + 1))
    for a in added:
        assert (await me.items.get(conv.id, a.id)).item == a.item


async def test_items_read_as_native_messages(me: UserScope) -> None:
    conv = await me.conversations.create()
    await me.items.add(conv.id, copy.deepcopy(EVERY_KIND))
    page = await me.messages.list(conv.id, limit=100)
    by_seq = {m.seq: m for m in page.items}
    assert by_seq[1].role == "user"
    assert by_seq[1].content == "Hi there"
    assert by_seq[2].role == "system"
    assert by_seq[2].item == EVERY_KIND[1]
    assert by_seq[4].content == "What is this?"
    call = by_seq[6]
    assert call.role == "assistant"
    assert call.tool_calls is not None
    assert call.tool_calls[0].id == "call_1"
    assert call.tool_calls[0].arguments == {"title": "buy milk"}
    assert by_seq[7].role == "tool"
    assert by_seq[7].tool_call_id == "call_1"
    assert by_seq[9].content == "Added **buy milk**.\n\nI won't do the other thing."
    assert by_seq[10].item_type == "web_search_call"
    assert by_seq[10].item_id == "ws_1"
    # The first user message names the conversation.
    assert (await me.conversations.get(conv.id)).title == "Hi there"


async def test_native_messages_read_as_items(me: UserScope) -> None:
    conv = await me.conversations.create()
    await me.messages.append(conv.id, role="user", content="add milk")
    assistant = await me.messages.append(
        conv.id,
        role="assistant",
        content="Added.",
        tool_calls=[{"id": "c1", "name": "add_task", "arguments": {"title": "milk"}}],
        tool_results=[{"tool_call_id": "c1", "output": {"id": 7}}],
    )
    tool = await me.messages.append(conv.id, role="tool", tool_call_id="c2", content="ok")
    items = (await me.items.list(conv.id)).items
    kinds = [(i.type, i.item.get("role")) for i in items]
    assert kinds == [
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "assistant"),
        ("function_call_output", None),
    ]
    hexid = assistant.id.hex
    assert [i.id for i in items[1:4]] == [f"fc_{hexid}_0", f"fco_{hexid}_0", f"msg_{hexid}"]
    assert items[1].item["arguments"] == json.dumps({"title": "milk"})
    assert items[2].item["output"] == json.dumps({"id": 7})
    assert items[4].id == f"fco_{tool.id.hex}"
    assert items[4].item["call_id"] == "c2"
    assert items[0].item["content"] == [{"type": "input_text", "text": "add milk"}]
    assert items[3].item["content"] == [
        {"type": "output_text", "text": "Added.", "annotations": []}
    ]
    # Derived ids resolve, in both directions of paging.
    assert (await me.items.get(conv.id, f"fco_{hexid}_0")).item["call_id"] == "c1"
    after = await me.items.list(conv.id, after=f"fc_{hexid}_0")
    assert [i.id for i in after.items] == [i.id for i in items[2:]]
    before = await me.items.list(conv.id, after=f"fco_{hexid}_0", order="desc")
    assert [i.id for i in before.items] == [items[1].id, items[0].id]


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_paging_walks_every_item_once(me: UserScope, order: str) -> None:
    conv = await me.conversations.create()
    await me.messages.append(
        conv.id,
        role="assistant",
        content="x",
        tool_calls=[{"id": f"c{n}", "name": "t", "arguments": {}} for n in range(3)],
    )
    await me.items.add(conv.id, [{"role": "user", "content": f"m{n}"} for n in range(40)])
    everything = (await me.items.list(conv.id, limit=1000, order=order)).items  # type: ignore[arg-type]
    assert len(everything) == 44
    seen: list[str] = []
    after = None
    while True:
        page = await me.items.list(conv.id, after=after, limit=7, order=order)  # type: ignore[arg-type]
        seen += [i.id for i in page.items]
        if not page.has_more:
            break
        after = page.last_id
    assert seen == [i.id for i in everything]
    assert len(set(seen)) == 44


async def test_latest_pop_delete_clear(me: UserScope) -> None:
    conv = await me.conversations.create()
    added = await me.items.add(conv.id, [{"role": "user", "content": f"m{n}"} for n in range(5)])
    latest = await me.items.latest(conv.id, 2)
    assert [i.item["content"] for i in latest] == ["m3", "m4"]
    assert await me.items.latest(conv.id, 0) == []
    popped = await me.items.pop(conv.id)
    assert popped is not None
    assert popped.id == added[-1].id
    await me.items.delete(conv.id, added[0].id)
    with pytest.raises(NotFound):
        await me.items.get(conv.id, added[0].id)
    with pytest.raises(NotFound):
        await me.items.delete(conv.id, added[0].id)
    assert [i.item["content"] for i in (await me.items.list(conv.id)).items] == ["m1", "m2", "m3"]
    assert await me.items.clear(conv.id) == 3
    assert (await me.items.list(conv.id)).items == []
    assert await me.items.pop(conv.id) is None
    # The conversation stays; seqs go on from where they were.
    (again,) = await me.items.add(conv.id, [{"role": "user", "content": "again"}])
    assert again.seq == 6


async def test_concurrent_pops_return_different_items(me: UserScope) -> None:
    conv = await me.conversations.create()
    await me.items.add(conv.id, [{"role": "user", "content": f"m{n}"} for n in range(6)])
    popped = await asyncio.gather(*(me.items.pop(conv.id) for _ in range(8)))
    got = [p.item["content"] for p in popped if p is not None]
    assert sorted(got) == [f"m{n}" for n in range(6)]
    assert popped.count(None) == 2


async def test_a_taken_id_is_a_conflict_and_nothing_is_stored(me: UserScope) -> None:
    conv = await me.conversations.create()
    await me.items.add(conv.id, [{"type": "reasoning", "id": "rs_1", "summary": []}])
    with pytest.raises(Conflict):
        await me.items.add(
            conv.id,
            [
                {"role": "user", "content": "new"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
            ],
        )
    assert len((await me.items.list(conv.id)).items) == 1
    with pytest.raises(InvalidInput) as caught:
        await me.items.add(conv.id, [{"id": "a", "role": "user", "content": "x"}] * 2)
    assert caught.value.fields == ["items.1.id"]
    # A removed item's id may be used again.
    await me.items.delete(conv.id, "rs_1")
    await me.items.add(conv.id, [{"type": "reasoning", "id": "rs_1", "summary": []}])


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ("text", "items.0"),
        ({"content": "no type or role"}, "items.0.type"),
        ({"type": "message", "role": "critic", "content": "x"}, "items.0.role"),
        ({"type": "message", "role": "user"}, "items.0.content"),
        ({"type": "message", "role": "user", "content": [{"text": "x"}]}, "items.0.content.0"),
        ({"type": "message", "role": "user", "content": "x", "status": "bad"}, "items.0.status"),
        (
            {"type": "function_call", "call_id": "c", "name": "n", "arguments": {}},
            "items.0.arguments",
        ),
        ({"type": "function_call_output", "call_id": "c"}, "items.0.output"),
        ({"type": "function_call_output", "output": "x"}, "items.0.call_id"),
        ({"type": "reasoning", "summary": "no"}, "items.0.summary"),
        ({"type": "item_reference", "id": "msg_1"}, "items.0.type"),
        ({"type": "bad type!"}, "items.0.type"),
        ({"type": "x", "id": "has space"}, "items.0.id"),
        ({"type": "x", "text": "nul\x00"}, "items.0"),
    ],
)
async def test_bad_items_name_the_field_and_store_nothing(
    me: UserScope, item: Any, field: str
) -> None:
    conv = await me.conversations.create()
    with pytest.raises(InvalidInput) as caught:
        await me.items.add(conv.id, [item])
    assert caught.value.fields == [field]
    assert (await me.items.list(conv.id)).items == []


async def test_size_limits(me: UserScope) -> None:
    conv = await me.conversations.create()
    big = {"type": "x", "blob": "a" * (1024 * 1024)}
    with pytest.raises(InvalidInput) as caught:
        await me.items.add(conv.id, [{"role": "user", "content": "ok"}, big])
    assert caught.value.fields == ["items.1"]
    with pytest.raises(InvalidInput) as caught:
        await me.items.add(conv.id, [{"type": "x"}] * 1001)
    assert caught.value.fields == ["items"]
    assert len(await me.items.add(conv.id, [{"type": "x"}] * 1000)) == 1000
    # Metadata keeps its small map; an item carries what it needs.
    (stored,) = await me.items.add(conv.id, [{"type": "x", "blob": "a" * 500_000}])
    assert len(stored.item["blob"]) == 500_000  # type: ignore[arg-type]


async def test_items_are_immutable_through_the_message_api(me: UserScope) -> None:
    conv = await me.conversations.create()
    (added,) = await me.items.add(conv.id, [{"role": "user", "content": "x"}])
    with pytest.raises(Conflict):
        await me.messages.update(conv.id, added.message_id, content="changed")


async def test_another_users_conversation_and_items_are_not_found(
    me: UserScope, them: UserScope
) -> None:
    conv = await me.conversations.create()
    (added,) = await me.items.add(conv.id, [{"role": "user", "content": "mine"}])
    for call in (
        them.items.add(conv.id, [{"role": "user", "content": "x"}]),
        them.items.list(conv.id),
        them.items.get(conv.id, added.id),
        them.items.delete(conv.id, added.id),
        them.items.pop(conv.id),
        them.items.clear(conv.id),
        them.items.latest(conv.id, 3),
    ):
        with pytest.raises(NotFound):
            await call
    theirs = await them.conversations.create()
    with pytest.raises(NotFound):
        await them.items.get(theirs.id, added.id)
    with pytest.raises(InvalidInput):
        await them.items.list(theirs.id, after=added.id)
    assert len((await me.items.list(conv.id)).items) == 1


async def test_deleted_conversation_hides_its_items(me: UserScope) -> None:
    conv = await me.conversations.create()
    (added,) = await me.items.add(conv.id, [{"role": "user", "content": "x"}])
    await me.conversations.delete(conv.id)
    with pytest.raises(NotFound):
        await me.items.get(conv.id, added.id)
    with pytest.raises(NotFound):
        await me.items.list(conv.id)


async def test_keys_find_or_create_one_conversation(me: UserScope, them: UserScope) -> None:
    made = await asyncio.gather(*(me.conversations.ensure("session-1") for _ in range(5)))
    assert len({c.id for c in made}) == 1
    assert made[0].key == "session-1"
    assert (await me.conversations.get_by_key("session-1")).id == made[0].id
    with pytest.raises(Conflict):
        await me.conversations.create(key="session-1")
    # Keys are per user; a deleted conversation frees its key.
    assert (await them.conversations.ensure("session-1")).id != made[0].id
    await me.conversations.delete(made[0].id)
    with pytest.raises(NotFound):
        await me.conversations.get_by_key("session-1")
    fresh = await me.conversations.ensure("session-1")
    assert fresh.id != made[0].id
    with pytest.raises(Conflict):
        await me.conversations.restore(made[0].id)


def test_openai_form_adds_id_status_and_parts() -> None:
    from convstore.items.schemas import ItemRead

    read = ItemRead.model_construct(
        id="msg_1", type="message", item={"role": "assistant", "content": "hi"}
    )
    assert openai_item(read) == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "hi", "annotations": []}],
    }


async def test_keep_ids_false_assigns_ids_and_keeps_the_items(me: UserScope) -> None:
    conv = await me.conversations.create()
    same = {"type": "message", "id": "__fake_id__", "role": "assistant", "content": "a"}
    first = await me.items.add(conv.id, [same, same], keep_ids=False)
    again = await me.items.add(conv.id, [same], keep_ids=False)
    reads = [*first, *again]
    assert [r.item for r in reads] == [same] * 3
    assert len({r.id for r in reads}) == 3
    assert all(r.id.startswith("msg_") for r in reads)
    with pytest.raises(InvalidInput):
        await me.items.add(conv.id, [same, same])
    assert (await me.items.get(conv.id, reads[2].id)).item == same
