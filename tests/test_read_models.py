"""Read models built without validation, in one place each: every field built, and the same
model Pydantic's own ``model_construct`` gives (a Pydantic release that changes its instance
internals fails here, not in production)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter

from convstore.conversations.schemas import ConversationRead, MessageRead, ToolCall, ToolResult
from convstore.conversations.service import (
    conversation_read,
    message_read,
    page_json,
    wire_page,
)
from convstore.items.schemas import ItemRead
from convstore.items.views import row_items
from convstore.kit.pagination import Page
from convstore.kit.schemas import trusted
from convstore.users.schemas import UserRead
from convstore.users.service import user_read

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CALL = {"id": "call_1", "type": "function", "name": "add_task", "arguments": {"title": "x"}}
RESULT = {"tool_call_id": "call_1", "output": {"ok": True}, "is_error": False}
MESSAGE_ROW = {
    "id": uuid.uuid4(),
    "created_at": NOW,
    "updated_at": NOW,
    "conversation_id": uuid.uuid4(),
    "seq": 3,
    "role": "assistant",
    "content": "done",
    "status": "complete",
    "tool_calls": [CALL],
    "tool_results": [RESULT],
    "tool_call_id": None,
    "attributes": {"k": "v"},
    "parent_id": uuid.uuid4(),
    "usage": {"tokens": 3},
    "item_type": None,
    "item_id": None,
    "item": None,
    "user_id": uuid.uuid4(),
}
ITEM_ROW = {
    **MESSAGE_ROW,
    "role": "tool",
    "tool_calls": None,
    "tool_results": None,
    "item_type": "function_call_output",
    "item_id": "fco_1",
    "item": {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
}
CONVERSATION_ROW = {
    "id": uuid.uuid4(),
    "created_at": NOW,
    "updated_at": NOW,
    "title": "t",
    "key": "session-1",
    "attributes": {"k": "v"},
    "messages_count": 3,
    "last_message_at": NOW,
    "deleted_at": None,
}


def _stored(**row: Any) -> Any:
    """The read model of MESSAGE_ROW with ``row``'s columns."""
    return message_read({**MESSAGE_ROW, **row})


USER_ROW = {
    "id": uuid.uuid4(),
    "created_at": NOW,
    "updated_at": NOW,
    "email": "ada@example.com",
    "name": None,
    "role": "user",
    "auth_provider": None,
    "is_active": True,
    "password_hash": "not read",
}
BUILDERS: list[tuple[type[BaseModel], Callable[[Any], BaseModel], dict[str, Any]]] = [
    (MessageRead, message_read, MESSAGE_ROW),
    (MessageRead, message_read, ITEM_ROW),
    (ItemRead, lambda row: row_items(row)[0], ITEM_ROW),
    (ConversationRead, conversation_read, CONVERSATION_ROW),
    (UserRead, user_read, USER_ROW),
    (ToolCall, lambda call: _stored(tool_calls=[call]).tool_calls[0], CALL),
    (ToolResult, lambda result: _stored(tool_results=[result]).tool_results[0], RESULT),
]


@pytest.mark.parametrize(
    ("cls", "build", "row"), BUILDERS, ids=lambda x: getattr(x, "__name__", "")
)
def test_each_builder_builds_every_field_of_its_model(
    cls: type[BaseModel], build: Callable[[Any], BaseModel], row: dict[str, Any]
) -> None:
    """Fails when a field is added to the read model and not to its builder."""
    model = build(row)
    assert type(model) is cls
    assert set(model.__dict__) == set(cls.model_fields)
    assert model.model_fields_set == set(cls.model_fields)
    # The unvalidated model is the one validation gives for the same row.
    assert model.model_dump() == cls.model_validate(model.model_dump()).model_dump()
    assert model == cls.model_validate(model.model_dump())


def test_trusted_is_what_model_construct_gives() -> None:
    values = {"tool_call_id": "c", "output": [1, "two"], "is_error": True}
    ours, theirs = trusted(ToolResult, dict(values)), ToolResult.model_construct(**values)
    assert ours == theirs
    assert ours.model_fields_set == theirs.model_fields_set
    assert ours.model_dump_json() == theirs.model_dump_json()
    assert ours.__pydantic_extra__ == theirs.__pydantic_extra__
    assert ours.__pydantic_private__ == theirs.__pydantic_private__
    assert ours.model_copy(update={"is_error": False}).is_error is False


def test_a_builder_missing_a_field_fails_at_its_first_build() -> None:
    class Shown(BaseModel):
        a: int
        b: int

    with pytest.raises(TypeError, match=r"fields not built \['b'\]"):
        trusted(Shown, {"a": 1})


def test_a_stored_tool_call_of_an_older_shape_still_builds() -> None:
    read = _stored(
        tool_calls=[{"id": "c", "name": "n", "arguments": {}}],
        tool_results=[{"tool_call_id": "c", "output": None}],
    )
    assert (read.tool_calls[0].type, read.tool_results[0].is_error) == ("function", False)


# The page's JSON built straight from rows (``page_json``) against Pydantic's JSON of the
# page's read models, for whatever a stored row can hold.

_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=12)
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
_OBJECT = st.dictionaries(st.text(max_size=6), _JSON, max_size=4)
_TIMES = st.datetimes(timezones=st.just(UTC))
_CALL = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=8), "name": st.text(max_size=8), "arguments": _OBJECT},
    optional={"type": st.just("function")},
)
_RESULT = st.fixed_dictionaries(
    {"tool_call_id": st.text(min_size=1, max_size=8), "output": _JSON},
    optional={"is_error": st.booleans()},
)
_ITEM = st.fixed_dictionaries(
    {"type": st.just("function_call_output"), "call_id": st.text(max_size=8), "output": _JSON}
)
try:
    from asyncpg.pgproto.pgproto import UUID as DriverUUID
except ImportError:  # the postgres extra is not installed
    _IDS = st.uuids()
else:
    # asyncpg hands its own subclass of uuid.UUID, which orjson does not know.
    _IDS = st.uuids() | st.uuids().map(lambda u: DriverUUID(str(u)))
_ROW = st.fixed_dictionaries(
    {
        "id": _IDS,
        "created_at": _TIMES,
        "updated_at": _TIMES,
        "conversation_id": _IDS,
        "seq": st.integers(min_value=1, max_value=2**53),
        "role": st.sampled_from(["user", "assistant", "system", "tool"]),
        "content": st.text(st.characters(codec="utf-8"), max_size=20),
        "status": st.sampled_from(["sent", "complete", "error"]),
        "tool_calls": st.none() | st.lists(_CALL, min_size=1, max_size=2),
        "tool_results": st.none() | st.lists(_RESULT, min_size=1, max_size=2),
        "tool_call_id": st.none() | st.text(min_size=1, max_size=8),
        "attributes": _OBJECT,
        "parent_id": st.none() | _IDS,
        "usage": st.none() | _OBJECT,
        "item_type": st.none(),
        "item_id": st.none(),
        "item": st.none(),
    }
)
_ITEM_ROW = _ROW.flatmap(
    lambda row: _ITEM.map(
        lambda item: {**row, "item_type": item["type"], "item_id": "fco_1", "item": item}
    )
)
_PAGE_JSON = TypeAdapter(Page[MessageRead])


def _pydantics(rows: list[dict[str, Any]], cursor: str | None, more: bool) -> bytes:
    page = Page[MessageRead].model_construct(
        items=[message_read(r) for r in rows], next_cursor=cursor, has_more=more
    )
    return _PAGE_JSON.dump_json(page, by_alias=True)


def _beyond_64_bits(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_beyond_64_bits(v) for v in value.values())
    if isinstance(value, list):
        return any(_beyond_64_bits(v) for v in value)
    return type(value) is int and not -(2**63) <= value < 2**64


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(_ROW | _ITEM_ROW, max_size=5),
    cursor=st.none() | st.text(max_size=8),
    more=st.booleans(),
)
def test_a_pages_json_from_rows_is_pydantics(
    rows: list[dict[str, Any]], cursor: str | None, more: bool
) -> None:
    expected = _pydantics(rows, cursor, more)
    assert page_json(rows, cursor, more) == expected
    if _beyond_64_bits(rows):
        with pytest.raises(orjson.JSONEncodeError):
            wire_page(rows, cursor, more)
    else:  # orjson's path, not Pydantic's
        assert wire_page(rows, cursor, more) == expected


def test_a_page_holding_an_integer_beyond_64_bits_is_still_pydantics() -> None:
    """orjson refuses such an integer; the page then takes Pydantic's path."""
    rows = [{**MESSAGE_ROW, "attributes": {"big": 2**64}}, ITEM_ROW]
    assert page_json(rows, None, False) == _pydantics(rows, None, False)
    assert b'"big":18446744073709551616' in page_json(rows, None, False)
