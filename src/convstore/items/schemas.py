"""Items: what agents produce, in the OpenAI Responses item model, stored as given.

An item is a JSON object with a ``type``: ``message`` (roles user, assistant, system,
developer; ``content`` a string or a list of parts), ``function_call``,
``function_call_output``, ``reasoning``, or any other typed item (``web_search_call``,
``mcp_call``, an application's own), which is kept as given. :func:`check_item` validates the
shape of the kinds convstore reads (the others only as storable JSON) and reads each item's
native projection: the role, text and tool call the native message view shows for it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import Field, JsonValue

from convstore.errors import FieldError, InvalidInput
from convstore.kit.jsoninput import nesting_exceeds
from convstore.kit.schemas import IDSchema, check_json

MAX_ITEMS_PER_CALL = 1_000
"""The most items one ``add`` takes (all stored or none)."""
MAX_ITEM_ID_CHARS = 255
ITEM_ID_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
ITEM_TYPE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,63}$")
MESSAGE_ROLES = ("user", "assistant", "system", "developer")
ITEM_STATUSES = ("in_progress", "completed", "incomplete")
ID_PREFIXES = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
    "compaction": "cmp",
}
"""The prefix of an id convstore assigns to an item given without one (``itm`` otherwise)."""
TEXT_PARTS = {"input_text": "text", "output_text": "text", "text": "text", "refusal": "refusal"}
"""Content parts whose text the native view shows (the key holding it)."""


class ItemRead(IDSchema):
    """One item of a conversation, in conversation order (``seq``, then its place in the row).

    ``item`` is the item exactly as it was added (an id is not added to it when it came
    without one: ``id`` is the id convstore gave it); for a message written through the
    native API it is that message's reading as items (see docs/schema.md, "Items").
    """

    id: str = Field(description="The item's id: as given, or assigned (`msg_…`, `fc_…`…).")  # type: ignore[assignment]
    type: str
    conversation_id: uuid.UUID
    message_id: uuid.UUID = Field(description="The stored row (a native message) holding it.")
    seq: int
    created_at: datetime
    item: dict[str, JsonValue]


@dataclass(frozen=True, slots=True)
class ItemPage:
    """A page of items in the order asked; ``first_id``/``last_id`` are its ends (None when
    empty), ``has_more`` whether items follow in that order."""

    items: list[ItemRead]
    has_more: bool

    @property
    def first_id(self) -> str | None:
        return self.items[0].id if self.items else None

    @property
    def last_id(self) -> str | None:
        return self.items[-1].id if self.items else None


@dataclass(frozen=True, slots=True)
class CheckedItem:
    """An item accepted for storage, with its native projection."""

    type: str
    id: str | None
    item: dict[str, Any]
    role: str
    content: str
    status: str
    tool_calls: list[dict[str, Any]] | None


def _fail(field: str, message: str) -> InvalidInput:
    return InvalidInput([FieldError(field, message)])


def _string(item: Mapping[str, Any], key: str, field: str, *, required: bool = True) -> str:
    value = item.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _fail(f"{field}.{key}", "must be a string")
    return value


def _text_of(content: Any) -> str:
    """The text of a content string or of its text parts, parts joined by blank lines."""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        key = TEXT_PARTS.get(part.get("type"))
        if key is not None and isinstance(part.get(key), str):
            texts.append(part[key])
    return "\n\n".join(texts)


def _check_parts(value: Any, field: str) -> None:
    """A string, or a list of parts: objects with a string ``type``."""
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise _fail(field, "must be a string or a list of content parts")
    for i, part in enumerate(value):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise _fail(f"{field}.{i}", "must be an object with a string 'type'")


def _native_status(status: Any, role: str, field: str) -> str:
    if status is None:
        return "sent" if role in ("user", "system") else "complete"
    if status not in ITEM_STATUSES:
        raise _fail(f"{field}.status", f"must be one of {', '.join(ITEM_STATUSES)}")
    return {"in_progress": "streaming", "incomplete": "error"}.get(
        status, "sent" if role in ("user", "system") else "complete"
    )


def _arguments_object(arguments: str) -> dict[str, Any]:
    """A function call's arguments as the native view's object ({} when they are not one:
    the item keeps them exactly)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _envelope(value: Any, field: str, max_bytes: int) -> tuple[str, str | None]:
    """What every item must be: a storable JSON object within the size limit, with a type
    (``message`` when only a ``role`` says so) and an optional printable id."""
    if not isinstance(value, dict):
        raise _fail(field, "must be an object (an item)")
    if nesting_exceeds(value):
        raise _fail(field, "nested too deeply")
    try:
        check_json(value)
    except ValueError as exc:
        raise _fail(field, str(exc)) from None
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > max_bytes:
        raise _fail(field, f"larger than {max_bytes} bytes once encoded (the item size limit)")
    kind = value.get("type", "message" if "role" in value else None)
    if kind is None:
        raise _fail(f"{field}.type", "is required (or a 'role' for a message)")
    if not isinstance(kind, str) or not ITEM_TYPE_PATTERN.match(kind):
        raise _fail(f"{field}.type", "must be a name of letters, digits, '_', '.' or '-'")
    item_id = value.get("id")
    if item_id is not None and (not isinstance(item_id, str) or not ITEM_ID_PATTERN.match(item_id)):
        raise _fail(f"{field}.id", f"must be 1 to {MAX_ITEM_ID_CHARS} printable characters")
    if kind == "item_reference":
        raise _fail(f"{field}.type", "item references are not stored: send the item itself")
    return kind, item_id


Projection = tuple[str, str, list[dict[str, Any]] | None]
"""An item's native role, text content and tool calls."""


def _message(value: dict[str, Any], field: str) -> Projection:
    role = value.get("role")
    if role not in MESSAGE_ROLES:
        raise _fail(f"{field}.role", f"must be one of {', '.join(MESSAGE_ROLES)}")
    if "content" not in value:
        raise _fail(f"{field}.content", "is required")
    _check_parts(value["content"], f"{field}.content")
    return ("system" if role == "developer" else role), _text_of(value["content"]), None


def _function_call(value: dict[str, Any], field: str) -> Projection:
    call = {
        "id": _string(value, "call_id", field),
        "type": "function",
        "name": _string(value, "name", field),
        "arguments": _arguments_object(_string(value, "arguments", field)),
    }
    return "assistant", "", [call]


def _function_call_output(value: dict[str, Any], field: str) -> Projection:
    _string(value, "call_id", field)
    output = value.get("output")
    if output is None:
        raise _fail(f"{field}.output", "is required")
    _check_parts(output, f"{field}.output")
    text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    return "tool", text, None


def _reasoning(value: dict[str, Any], field: str) -> Projection:
    if not isinstance(value.get("summary", []), list):
        raise _fail(f"{field}.summary", "must be a list of summary parts")
    return "assistant", "", None


_KINDS = {
    "message": _message,
    "function_call": _function_call,
    "function_call_output": _function_call_output,
    "reasoning": _reasoning,
}
"""The kinds whose shape convstore checks (it reads them); any other is kept as given."""
_STATUSED = ("message", "function_call", "function_call_output")


def check_item(value: Any, field: str, max_bytes: int) -> CheckedItem:
    """Validate one item to add; the first problem is raised naming ``field`` (e.g.
    ``items.3``) and the key under it."""
    kind, item_id = _envelope(value, field, max_bytes)
    project = _KINDS.get(kind)
    role, content, calls = project(value, field) if project else ("assistant", "", None)
    # Only the kinds convstore reads have statuses it knows; others keep theirs in the item.
    given = value.get("status") if kind in _STATUSED else None
    status = _native_status(given, role, field)
    return CheckedItem(kind, item_id, value, role, content, status, calls)


def assigned_id(kind: str, row_id: uuid.UUID) -> str:
    """The id convstore gives an item added without one: a prefix for its type and the hex
    of its row's id (unique, and time-ordered like the row)."""
    return f"{ID_PREFIXES.get(kind, 'itm')}_{row_id.hex}"
