"""Read models built without validation, in one place each: every field built, and the same
model Pydantic's own ``model_construct`` gives (a Pydantic release that changes its instance
internals fails here, not in production)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from convstore.conversations.schemas import ConversationRead, MessageRead, ToolCall, ToolResult
from convstore.conversations.service import (
    _tool_call,
    _tool_result,
    conversation_read,
    message_read,
)
from convstore.items.schemas import ItemRead
from convstore.items.views import row_items
from convstore.kit.schemas import trusted

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
BUILDERS: list[tuple[type[BaseModel], Callable[[Any], BaseModel], dict[str, Any]]] = [
    (MessageRead, message_read, MESSAGE_ROW),
    (MessageRead, message_read, ITEM_ROW),
    (ItemRead, lambda row: row_items(row)[0], ITEM_ROW),
    (ConversationRead, conversation_read, CONVERSATION_ROW),
    (ToolCall, _tool_call, CALL),
    (ToolResult, _tool_result, RESULT),
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
    call = _tool_call({"id": "c", "name": "n", "arguments": {}})
    result = _tool_result({"tool_call_id": "c", "output": None})
    assert (call.type, result.is_error) == ("function", False)
