"""The two readings of a message row: as items, and (for an item row) as a native message.

A row added as an item reads back as that item. A native row (written through the message
API or by the chat turn) reads as the items an OpenAI client would have stored for it
(docs/schema.md, "Items"): an assistant message's function calls, then their outputs, then its
text; a ``tool`` message as a ``function_call_output``. Those items' ids are derived from the
row's id (``fc_<hex>_<n>``…), so they are stable and resolve back to the row.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from convstore.items.schemas import ItemRead, assigned_id
from convstore.kit.schemas import trusted

DERIVED_ID = re.compile(r"^(msg|fc|fco)_([0-9a-f]{32})(?:_([0-9]{1,4}))?$")
"""The form of a derived item id: the kind, the row's id in hex, the call's index."""
_STATUS = {"streaming": "in_progress", "error": "incomplete"}


def derived_row_id(item_id: str) -> uuid.UUID | None:
    """The row a derived item id points into, or None when the id is not of that form."""
    match = DERIVED_ID.match(item_id)
    return uuid.UUID(hex=match.group(2)) if match else None


def _output(value: Any) -> Any:
    """A tool result's output as a ``function_call_output`` carries it: a string or parts."""
    if isinstance(value, str):
        return value
    if (
        isinstance(value, list)
        and value
        and all(
            isinstance(p, dict) and p.get("type") in ("input_text", "input_image", "input_file")
            for p in value
        )
    ):
        return value
    return json.dumps(value, ensure_ascii=False)


def native_items(row: Mapping[Any, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The items of a native row, in order, each with its derived id (at least one)."""
    hexid = row["id"].hex
    status = _STATUS.get(row["status"], "completed")
    if row["role"] == "tool":
        item_id = f"fco_{hexid}"
        output = {
            "type": "function_call_output",
            "id": item_id,
            "call_id": row["tool_call_id"],
            "output": row["content"],
            "status": status,
        }
        return [(item_id, output)]
    items: list[tuple[str, dict[str, Any]]] = []
    for n, call in enumerate(row["tool_calls"] or ()):
        item_id = f"fc_{hexid}_{n}"
        arguments = json.dumps(call["arguments"], ensure_ascii=False)
        items.append(
            (
                item_id,
                {
                    "type": "function_call",
                    "id": item_id,
                    "call_id": call["id"],
                    "name": call["name"],
                    "arguments": arguments,
                    "status": "completed",
                },
            )
        )
    for n, result in enumerate(row["tool_results"] or ()):
        item_id = f"fco_{hexid}_{n}"
        items.append(
            (
                item_id,
                {
                    "type": "function_call_output",
                    "id": item_id,
                    "call_id": result["tool_call_id"],
                    "output": _output(result["output"]),
                    "status": "completed",
                },
            )
        )
    if row["content"] or not items:
        item_id = f"msg_{hexid}"
        assistant = row["role"] == "assistant"
        part = (
            {"type": "output_text", "text": row["content"], "annotations": []}
            if assistant
            else {"type": "input_text", "text": row["content"]}
        )
        message = {
            "type": "message",
            "id": item_id,
            "role": row["role"],
            "content": [part],
            "status": status,
        }
        items.append((item_id, message))
    return items


def row_items(row: Mapping[Any, Any]) -> list[ItemRead]:
    """Every item of one row (an item row has exactly one), in conversation order."""
    common = {
        "conversation_id": row["conversation_id"],
        "message_id": row["id"],
        "seq": row["seq"],
        "created_at": row["created_at"],
    }
    if row["item_type"] is not None:
        values = {"id": row["item_id"], "type": row["item_type"], "item": row["item"], **common}
        return [trusted(ItemRead, values)]
    return [
        trusted(ItemRead, {"id": item_id, "type": item["type"], "item": item, **common})
        for item_id, item in native_items(row)
    ]


def openai_item(read: ItemRead) -> dict[str, Any]:
    """The item as the OpenAI Conversations API returns it: with its ``id``, a ``status``
    where the client's types require one, and a message's string content as a list of parts
    (``input_text``, or ``output_text`` for the assistant): valid input again as it is."""
    item = {**read.item, "id": read.id}
    kind = read.type
    item.setdefault("type", kind)
    if kind in ("message", "function_call", "function_call_output"):
        item.setdefault("status", "completed")
    if kind == "message" and isinstance(item.get("content"), str):
        if item.get("role") == "assistant":
            item["content"] = [{"type": "output_text", "text": item["content"], "annotations": []}]
        else:
            item["content"] = [{"type": "input_text", "text": item["content"]}]
    return item


def new_item_id(kind: str, given: str | None, row_id: uuid.UUID) -> str:
    """The id an item is stored under: the one given, else one assigned."""
    return given if given is not None else assigned_id(kind, row_id)
