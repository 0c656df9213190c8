"""Helpers for the MCP tests: what every transport must do, through the official client."""

from __future__ import annotations

import uuid
from typing import Any

from mcp_types import CallToolResult
from mcp_types.version import LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION

from convstore.assistant.tools import TOOLS
from mcp import Client

PROTOCOL = {"legacy": LATEST_HANDSHAKE_VERSION, "auto": LATEST_MODERN_VERSION}
"""The version each client mode ends up speaking with convstore: ``legacy`` is the initialize
handshake (2025 revisions); ``auto`` probes ``server/discover`` and gets 2026-07-28."""
STEP_TIMEOUT = 20.0
"""Seconds any one client session may take before the test fails instead of hanging."""


async def call(client: Client, name: str, arguments: dict[str, Any]) -> CallToolResult:
    """Call a tool and return its result (never an InputRequiredResult here)."""
    result = await client.call_tool(name, arguments)
    assert isinstance(result, CallToolResult), result
    return result


def error_text(result: CallToolResult) -> str:
    """The message of a tool error."""
    assert result.is_error, result
    return " ".join(getattr(block, "text", "") for block in result.content)


def structured(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful call."""
    assert not result.is_error, result
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


async def assert_lists_the_six_tools(client: Client) -> None:
    """The tools are the assistant's six, each with its argument model's schema."""
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert list(listed) == list(TOOLS)
    for name, model in TOOLS.items():
        assert listed[name].input_schema == model.model_json_schema(), name
        assert listed[name].description == (model.__doc__ or "").strip()
    assert "title" in listed["add_task"].input_schema["properties"]
    assert listed["add_task"].input_schema["required"] == ["title"]


async def exercise_tools(client: Client) -> str:
    """Add, list, complete, reopen, update and delete; bad calls are errors and harmless.

    Returns the title of a task left behind, for the caller to find in the database.
    """
    title = f"Buy milk {uuid.uuid4().hex[:6]}"
    task = structured(await call(client, "add_task", {"title": title, "tags": ["Home"]}))
    assert task["title"] == title
    assert task["tags"] == ["home"]
    listed = structured(await call(client, "list_tasks", {}))["tasks"]
    assert task["id"] in [t["id"] for t in listed]

    done = structured(await call(client, "complete_task", {"task_id": task["id"]}))
    assert done["completed"] is True
    missing = await call(client, "complete_task", {"task_id": str(uuid.uuid4())})
    assert "not found" in error_text(missing)
    blank = await call(client, "add_task", {"title": "   "})
    assert "title" in error_text(blank)
    control = await call(client, "add_task", {"title": "x", "tags": ["ok", "a\u0000b"]})
    assert "tags.1: contains a disallowed character U+0000" in error_text(control)
    bad_filter = await call(client, "list_tasks", {"tag": "a\u0000b"})
    assert "tag: contains a disallowed character U+0000" in error_text(bad_filter)

    # The session keeps working after the errors.
    pending = structured(await call(client, "list_tasks", {"status": "pending"}))["tasks"]
    assert task["id"] not in [t["id"] for t in pending]
    reopened = structured(await call(client, "reopen_task", {"task_id": task["id"]}))
    assert reopened["completed"] is False
    renamed = structured(await call(client, "update_task", {"task_id": task["id"], "title": "X"}))
    assert renamed["title"] == "X"
    structured(await call(client, "delete_task", {"task_id": task["id"]}))
    gone = await call(client, "delete_task", {"task_id": task["id"]})
    assert "not found" in error_text(gone)
    kept = structured(await call(client, "add_task", {"title": f"kept {title}"}))
    return str(kept["title"])
