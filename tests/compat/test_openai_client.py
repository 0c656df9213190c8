"""The official ``openai`` client's ``conversations`` API against a live ``convstore serve``,
unchanged but for ``base_url`` and ``api_key``, on both databases: every call, paging, errors
as the client's exception classes, isolation between two users' keys, retries made safe."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from openai.types.conversations import (
    Conversation,
    ConversationDeletedResource,
    ConversationItem,
    ConversationItemList,
)
from pydantic import TypeAdapter

from convstore import Store
from tests.compat.conftest import Program, serve_for_test, sign_up_program

ITEM = TypeAdapter(ConversationItem)

TURN: list[dict[str, Any]] = [
    {"type": "message", "role": "user", "content": "add buy milk tomorrow"},
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "a task"}]},
    {
        "type": "function_call",
        "call_id": "call_1",
        "name": "add_task",
        "arguments": '{"title": "buy milk", "due": "tomorrow"}',
    },
    {"type": "function_call_output", "call_id": "call_1", "output": '{"id": 1}'},
    {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Added “buy milk”.", "annotations": []}],
    },
    {
        "type": "web_search_call",
        "id": "ws_1",
        "status": "completed",
        "action": {"type": "search", "query": "milk prices"},
    },
]
"""One agent turn: what the Agents SDK stores through ``items.create``."""


def _strict(item: Any) -> None:
    """Validate one returned item against the client's own types, strictly (the client
    itself builds them without validation)."""
    data = item if isinstance(item, dict) else item.model_dump(exclude_unset=True)
    ITEM.validate_python(data)


def test_every_call_of_the_conversations_api(program: Program) -> None:
    client = program.client()
    started = int(time.time())
    conv = client.conversations.create(items=TURN[:1], metadata={"topic": "groceries"})
    assert isinstance(conv, Conversation)
    assert conv.id.startswith("conv_")
    assert conv.object == "conversation"
    assert started - 1 <= conv.created_at <= int(time.time()) + 1
    assert conv.metadata == {"topic": "groceries"}
    Conversation.model_validate(conv.model_dump())

    assert client.conversations.retrieve(conv.id) == conv
    updated = client.conversations.update(conv.id, metadata={"topic": "chores", "k": "v"})
    assert updated.metadata == {"topic": "chores", "k": "v"}
    assert updated.id == conv.id
    assert client.conversations.update(conv.id, metadata=None).metadata == {}

    added = client.conversations.items.create(conv.id, items=TURN[1:])
    assert isinstance(added, ConversationItemList)
    ConversationItemList.model_validate(added.model_dump())
    assert [i.type for i in added.data] == [t["type"] for t in TURN[1:]]
    assert added.first_id == added.data[0].id
    assert added.last_id == added.data[-1].id
    assert added.has_more is False
    assert added.data[0].id == "rs_1"
    assert added.data[-1].id == "ws_1"
    assert added.data[1].id.startswith("fc_")
    assert added.data[2].id.startswith("fco_")

    listed = client.conversations.items.list(conv.id, order="asc")
    items = list(listed)
    assert [i.type for i in items] == [t["type"] for t in TURN]
    for item in items:
        _strict(item)
    first = items[0].model_dump(exclude_unset=True)
    assert first["content"] == [{"type": "input_text", "text": "add buy milk tomorrow"}]
    assert first["role"] == "user"
    assert first["status"] == "completed"
    assert first["id"].startswith("msg_")

    one = client.conversations.items.retrieve(items[2].id, conversation_id=conv.id)
    assert one.model_dump(exclude_unset=True) == items[2].model_dump(exclude_unset=True)

    after_delete = client.conversations.items.delete(items[1].id, conversation_id=conv.id)
    assert isinstance(after_delete, Conversation)
    assert after_delete.id == conv.id
    remaining = [i.id for i in client.conversations.items.list(conv.id, order="asc")]
    assert remaining == [i.id for i in items if i.id != items[1].id]

    deleted = client.conversations.delete(conv.id)
    assert isinstance(deleted, ConversationDeletedResource)
    assert (deleted.id, deleted.object, deleted.deleted) == (conv.id, "conversation.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_returned_items_are_input_again(program: Program) -> None:
    """What ``items.list`` returns goes straight back into ``items.create`` (the Agents SDK
    replays ``model_dump(exclude_unset=True)``) and reads back the same."""
    client = program.client()
    source = client.conversations.create(items=TURN)
    dumped = [
        i.model_dump(exclude_unset=True)
        for i in client.conversations.items.list(source.id, order="asc")
    ]
    copy = client.conversations.create(items=dumped)
    again = [
        i.model_dump(exclude_unset=True)
        for i in client.conversations.items.list(copy.id, order="asc")
    ]
    assert again == dumped


def test_paging_through_250_items_in_both_orders(program: Program) -> None:
    client = program.client()
    conv = client.conversations.create()
    sent = [
        {"type": "message", "role": "user" if n % 2 else "assistant", "content": f"item {n}"}
        for n in range(250)
    ]
    ids: list[str] = []
    ids += [i.id for i in client.conversations.items.create(conv.id, items=sent[:150]).data]
    for start in range(150, 250, 20):  # OpenAI's own batch size
        batch = client.conversations.items.create(conv.id, items=sent[start : start + 20])
        ids += [i.id for i in batch.data]
    assert len(set(ids)) == 250

    for limit in (1, 7, 100):
        asc = [i.id for i in client.conversations.items.list(conv.id, order="asc", limit=limit)]
        assert asc == ids, limit
    desc_pages = client.conversations.items.list(conv.id, limit=33)  # desc is the default
    assert [i.id for i in desc_pages] == ids[::-1]

    page = client.conversations.items.list(conv.id, order="asc", limit=100, after=ids[199])
    assert [i.id for i in page.data] == ids[200:]
    assert page.has_more is False
    page = client.conversations.items.list(conv.id, order="desc", limit=10, after=ids[10])
    assert [i.id for i in page.data] == ids[9::-1]
    assert page.has_more is False
    page = client.conversations.items.list(conv.id, order="desc", limit=10, after=ids[11])
    assert [i.id for i in page.data] == ids[10::-1][:10]
    assert page.has_more is True
    texts = [
        i.content[0].text for i in client.conversations.items.list(conv.id, order="asc", limit=100)
    ]  # type: ignore[union-attr]
    assert texts == [s["content"] for s in sent]


def test_the_list_of_your_conversations(program: Program, other_program: Program) -> None:
    """OpenAI's API has none; convstore's has OpenAI's list shape, newest first, paged."""
    client = program.client()
    mine = [client.conversations.create(metadata={"n": str(n)}).id for n in range(5)]
    program_b = other_program.client()
    theirs = program_b.conversations.create().id
    page = client.get("/conversations", cast_to=object, options={"params": {"limit": 2}})
    assert isinstance(page, dict)
    assert page["object"] == "list"
    assert page["has_more"] is True
    assert [c["id"] for c in page["data"]] == mine[::-1][:2]
    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, "order": "asc"}
        if after:
            params["after"] = after
        page = client.get("/conversations", cast_to=object, options={"params": params})
        assert isinstance(page, dict)
        seen += [c["id"] for c in page["data"]]
        if not page["has_more"]:
            break
        after = page["last_id"]
    assert seen == mine
    assert theirs not in seen
    client.conversations.delete(mine[0])
    page = client.get("/conversations", cast_to=object, options={"params": {"order": "asc"}})
    assert isinstance(page, dict)
    assert [c["id"] for c in page["data"]] == mine[1:]


def _error(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert exc.response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = body["error"]
    return error


def test_errors_are_the_clients_exception_classes(program: Program) -> None:
    client = program.client(max_retries=0)
    conv = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "hi", "id": "msg_taken"}]
    )

    with pytest.raises(openai.NotFoundError) as missing:
        client.conversations.retrieve(f"conv_{uuid.uuid4().hex}")
    assert _error(missing.value)["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve("not-a-conversation-id")
    with pytest.raises(openai.NotFoundError):
        client.conversations.items.retrieve("msg_missing", conversation_id=conv.id)

    with pytest.raises(openai.BadRequestError) as bad_limit:
        client.conversations.items.list(conv.id, limit=101)
    assert _error(bad_limit.value)["param"] == "limit"
    with pytest.raises(openai.BadRequestError) as bad_after:
        client.conversations.items.list(conv.id, after="msg_nowhere")
    assert _error(bad_after.value)["param"] == "after"
    with pytest.raises(openai.BadRequestError) as bad_item:
        client.conversations.items.create(
            conv.id, items=[{"type": "message", "role": "robot", "content": "x"}]
        )  # type: ignore[list-item]
    assert _error(bad_item.value)["param"] == "items.0.role"
    with pytest.raises(openai.BadRequestError) as bad_meta:
        client.conversations.update(conv.id, metadata={"k" * 65: "v"})
    assert _error(bad_meta.value)["param"].startswith("metadata")
    with pytest.raises(openai.BadRequestError) as bad_order:
        client.conversations.items.list(conv.id, order="sideways")  # type: ignore[arg-type]
    assert _error(bad_order.value)["param"] == "order"

    with pytest.raises(openai.ConflictError) as taken:
        client.conversations.items.create(
            conv.id,
            items=[{"type": "message", "role": "user", "content": "again", "id": "msg_taken"}],
        )
    assert taken.value.response.headers["x-should-retry"] == "false"
    assert [i.id for i in client.conversations.items.list(conv.id)] == ["msg_taken"]

    with (
        openai.OpenAI(base_url=client.base_url, api_key="csk_" + "x" * 43, max_retries=0) as wrong,
        pytest.raises(openai.AuthenticationError) as unauthenticated,
    ):
        wrong.conversations.retrieve(conv.id)
    assert _error(unauthenticated.value)["code"] == "invalid_api_key"


def test_a_conflict_is_not_retried_but_an_unavailable_server_is(program: Program) -> None:
    """With its default retries the client gives up on a taken id at once (one request)."""
    requests: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda r: requests.append(str(r.url))]})
    client = program.client(http_client=http)  # closed with the client
    conv = client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "x", "id": "m1"}]
    )
    requests.clear()
    with pytest.raises(openai.ConflictError):
        client.conversations.items.create(
            conv.id, items=[{"type": "message", "role": "user", "content": "y", "id": "m1"}]
        )
    assert len(requests) == 1


def test_idempotency_key_makes_retried_posts_safe(program: Program) -> None:
    client = program.client()
    key = {"Idempotency-Key": f"create-{uuid.uuid4()}"}
    first = client.conversations.create(metadata={"a": "1"}, extra_headers=key)
    again = client.conversations.create(metadata={"a": "1"}, extra_headers=key)
    assert again.id == first.id
    items_key = {"Idempotency-Key": f"items-{uuid.uuid4()}"}
    one = client.conversations.items.create(first.id, items=TURN[:2], extra_headers=items_key)
    two = client.conversations.items.create(first.id, items=TURN[:2], extra_headers=items_key)
    assert one == two
    assert len(list(client.conversations.items.list(first.id))) == 2
    with pytest.raises(openai.BadRequestError) as reused:
        client.conversations.items.create(first.id, items=TURN[:1], extra_headers=items_key)
    assert _error(reused.value)["param"].lower() == "idempotency-key"


def test_two_keys_of_two_users_are_isolated(program: Program, other_program: Program) -> None:
    mine, theirs = program.client(max_retries=0), other_program.client(max_retries=0)
    conv = mine.conversations.create(items=TURN)
    item_id = next(iter(mine.conversations.items.list(conv.id))).id
    calls: list[Callable[[str], object]] = [
        lambda c: theirs.conversations.retrieve(c),
        lambda c: theirs.conversations.update(c, metadata={"x": "y"}),
        lambda c: theirs.conversations.items.list(c),
        lambda c: theirs.conversations.items.create(c, items=TURN[:1]),
        lambda c: theirs.conversations.items.retrieve(item_id, conversation_id=c),
        lambda c: theirs.conversations.items.delete(item_id, conversation_id=c),
        lambda c: theirs.conversations.delete(c),
    ]
    missing = f"conv_{uuid.uuid4().hex}"
    for call in calls:
        with pytest.raises(openai.NotFoundError) as foreign:
            call(conv.id)
        with pytest.raises(openai.NotFoundError) as absent:
            call(missing)
        assert _error(foreign.value) == _error(absent.value)
    assert len(list(mine.conversations.items.list(conv.id))) == len(TURN)
    assert mine.conversations.retrieve(conv.id).metadata == {}


def test_one_conversation_through_both_apis(program: Program) -> None:
    """A ``conv_`` id is the conversation's convstore id: ``/api/v1`` and ``/v1`` read the same
    items, JSON-equal, and a native message reads as items over ``/v1``."""
    client = program.client()
    given = [
        {**item, "id": f"it_{n}", "status": "completed"} if item["type"] != "reasoning" else item
        for n, item in enumerate(TURN)
    ]
    given[0]["content"] = [{"type": "input_text", "text": "add buy milk tomorrow"}]
    conv = client.conversations.create(items=given)
    native_id = uuid.UUID(hex=conv.id.removeprefix("conv_"))
    with httpx.Client(base_url=program.base_url, headers=program.headers) as http:
        items = http.get(f"/api/v1/conversations/{native_id}/items", params={"limit": 100})
        assert items.status_code == 200, items.text
        assert [i["item"] for i in items.json()["items"]] == given
        message = http.post(
            f"/api/v1/conversations/{native_id}/messages",
            json={
                "role": "assistant",
                "content": "Done.",
                "tool_calls": [{"id": "call_9", "name": "list_tasks", "arguments": {}}],
            },
        )
        assert message.status_code == 201, message.text
    over_v1 = [
        i.model_dump(exclude_unset=True)
        for i in client.conversations.items.list(conv.id, order="asc")
    ]
    assert over_v1[: len(given)] == given
    call, text = over_v1[len(given) :]
    assert call["type"] == "function_call"
    assert call["call_id"] == "call_9"
    assert call["arguments"] == "{}"
    assert call["name"] == "list_tasks"
    assert text["type"] == "message"
    assert text["content"][0]["text"] == "Done."
    for item in over_v1:
        _strict(item)


def test_rate_limited_is_a_rate_limit_error(
    tmp_path_factory: pytest.TempPathFactory, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("the rate limiter does not depend on the database")
    directory = tmp_path_factory.mktemp("limited")
    server = serve_for_test(
        directory, f"sqlite:///{directory / 'r.db'}", CONVSTORE_RATE_LIMIT_USER="3/minute"
    )
    base = next(server)
    limited_program = sign_up_program(base)
    try:
        client = limited_program.client(max_retries=0)
        conv = client.conversations.create()
        limited: openai.RateLimitError | None = None
        for _ in range(5):  # three requests a minute: one of these is refused
            try:
                client.conversations.retrieve(conv.id)
            except openai.RateLimitError as exc:
                limited = exc
                break
        assert limited is not None
        assert _error(limited)["code"] == "rate_limit_exceeded"
        assert int(limited.response.headers["retry-after"]) >= 1
    finally:
        limited_program.close()
        server.close()


EVERY_KIND: list[dict[str, Any]] = [
    {
        "type": "message",
        "id": "m_sys",
        "role": "system",
        "status": "completed",
        "content": [{"type": "input_text", "text": "Be brief."}],
    },
    {
        "type": "message",
        "id": "m_dev",
        "role": "developer",
        "status": "completed",
        "content": [{"type": "input_text", "text": "Use the tools."}],
    },
    {
        "type": "message",
        "id": "m_user",
        "role": "user",
        "status": "completed",
        "content": [
            {"type": "input_text", "text": "what is in these?"},
            {
                "type": "input_image",
                "detail": "auto",
                "image_url": "data:image/png;base64,iVBORw0KGgo=",
            },
            {
                "type": "input_file",
                "filename": "list.txt",
                "file_data": "data:text/plain;base64,bWlsaw==",
            },
        ],
    },
    {
        "type": "reasoning",
        "id": "rs_every",
        "encrypted_content": "gAAAAB…opaque",
        "summary": [{"type": "summary_text", "text": "two attachments"}],
    },
    {
        "type": "function_call",
        "id": "fc_every",
        "call_id": "c1",
        "name": "read_file",
        "arguments": '{"name": "list.txt"}',
        "status": "completed",
    },
    {
        "type": "function_call_output",
        "id": "fco_every",
        "call_id": "c1",
        "status": "completed",
        "output": [{"type": "input_text", "text": "milk"}],
    },
    {
        "type": "mcp_call",
        "id": "mcp_1",
        "server_label": "weather",
        "name": "forecast",
        "arguments": '{"city": "Lyon"}',
        "output": "sunny",
        "status": "completed",
    },
    {
        "type": "web_search_call",
        "id": "ws_every",
        "status": "completed",
        "action": {"type": "search", "query": "milk"},
    },
    {"type": "acme.note", "id": "note_1", "body": {"pinned": True, "tags": ["x", "y"]}},
    {
        "type": "message",
        "id": "m_refusal",
        "role": "assistant",
        "status": "completed",
        "content": [
            {"type": "refusal", "refusal": "I cannot open that image."},
            {"type": "output_text", "text": "The file says milk.", "annotations": []},
        ],
    },
]
"""An item of every kind an agent stores, each already in its returned form (id, status)."""


async def test_every_kind_of_item_reads_back_equal_on_every_surface(
    program: Program, store: Store
) -> None:
    """Added once over ``/v1``; read back JSON-equal, in order, through ``/v1``, ``/api/v1``
    and the library."""
    async with program.async_client() as client:
        conv = await client.conversations.create(items=EVERY_KIND[:4])
        await client.conversations.items.create(conv.id, items=EVERY_KIND[4:])
        over_v1 = [
            i.model_dump(exclude_unset=True)
            async for i in client.conversations.items.list(conv.id, order="asc")
        ]
        assert over_v1 == EVERY_KIND
        for n, given in enumerate(EVERY_KIND):
            one = await client.conversations.items.retrieve(given["id"], conversation_id=conv.id)
            assert one.model_dump(exclude_unset=True) == given, n
    native_id = uuid.UUID(hex=conv.id.removeprefix("conv_"))
    async with httpx.AsyncClient(base_url=program.base_url, headers=program.headers) as http:
        page = await http.get(f"/api/v1/conversations/{native_id}/items", params={"limit": 100})
        assert page.status_code == 200, page.text
    assert [i["item"] for i in page.json()["items"]] == EVERY_KIND
    assert [i["id"] for i in page.json()["items"]] == [i["id"] for i in EVERY_KIND]
    library = await store.for_user(program.user_id).items.list(native_id, limit=100, order="asc")
    assert [i.item for i in library.items] == EVERY_KIND
