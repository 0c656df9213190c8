"""The MCP server: the six task tools of :mod:`convstore.assistant.tools`, run for one user.

Built on the SDK's low-level :class:`mcp.server.lowlevel.server.Server` rather than
``MCPServer``: the input schema of each tool is exactly its Pydantic model's JSON schema (the
one the builtin and OpenAI-compatible assistants use), and arguments are validated once, by
:func:`~convstore.assistant.executor.execute`, whose messages a model can act on.

Every call runs in its own write transaction, for the user ``resolve_user()`` returns; a failed
call is rolled back and answered as a tool error (``isError``) carrying the message, so the
session goes on. The user never comes from the arguments: another user's task is "not found".
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

import convstore
from convstore import __version__
from convstore.assistant.executor import ToolOutcome, ToolScope, execute
from convstore.assistant.tools import TOOLS
from convstore.config import Settings
from convstore.errors import Conflict, ConvstoreError, NotFound, PermissionDenied
from convstore.store import Store
from convstore.users.schemas import UserRead

log = logging.getLogger("convstore.mcp")

SERVER_NAME = "convstore"
INSTRUCTIONS = (
    "Manage the user's todo list. Use list_tasks to find a task's id before completing, "
    "reopening, updating or deleting it. Times are ISO 8601 with a time zone."
)
UNEXPECTED = "an unexpected error occurred; it has been logged"

UserResolver = Callable[[], Awaitable[uuid.UUID]]
"""Returns the acting user's id for the call being served."""
StoreSource = Store | Callable[[], Store]
"""A store, or a function returning the store for the call being served."""

_ANNOTATIONS: dict[str, types.ToolAnnotations] = {
    name: types.ToolAnnotations(title=title, open_world_hint=False, **hints)
    for name, title, hints in [
        ("add_task", "Add a task", {"destructive_hint": False}),
        ("list_tasks", "List tasks", {"read_only_hint": True}),
        ("complete_task", "Complete a task", {"destructive_hint": False, "idempotent_hint": True}),
        ("reopen_task", "Reopen a task", {"destructive_hint": False, "idempotent_hint": True}),
        ("update_task", "Update a task", {"idempotent_hint": True}),
        ("delete_task", "Delete a task", {"idempotent_hint": True}),
    ]
}
"""Hints for clients; every tool acts on the user's own task list only (a closed world)."""


class _Rollback(Exception):
    """Leaves the write transaction of a failed tool call without committing."""

    def __init__(self, outcome: ToolOutcome) -> None:
        super().__init__(outcome.name)
        self.outcome = outcome


def tool_definitions() -> list[types.Tool]:
    """The MCP form of every tool: name, description and the argument model's JSON schema."""
    return [
        types.Tool(
            name=name,
            title=_ANNOTATIONS[name].title,
            description=(model.__doc__ or "").strip(),
            input_schema=model.model_json_schema(),
            annotations=_ANNOTATIONS[name],
        )
        for name, model in TOOLS.items()
    ]


async def run_tool(
    store: Store, user_id: uuid.UUID, name: str, arguments: dict[str, Any]
) -> ToolOutcome:
    """Run one tool call for ``user_id`` in its own write transaction: the MCP tool is an entry
    point, it owns the transaction and hands the executor its connection.

    A failed outcome rolls the transaction back; a database failure is a failed outcome too.
    """
    call_id = f"mcp_{uuid.uuid4().hex[:16]}"
    try:
        async with store.writing(user_id) as conn:
            outcome = await execute(conn, ToolScope(user_id), call_id, name, arguments)
            if not outcome.ok:
                raise _Rollback(outcome)
    except _Rollback as failed:
        return failed.outcome
    except ConvstoreError as exc:
        return ToolOutcome(call_id, name, False, {"error": exc.message})
    return outcome


def to_result(outcome: ToolOutcome) -> types.CallToolResult:
    """The MCP result of an outcome: structured content plus the same JSON as text.

    Structured content must be an object before protocol 2026-07-28, so the list of
    ``list_tasks`` is wrapped as ``{"tasks": [...]}``; an error is ``{"error": message}`` with
    ``isError`` set and the bare message as its text.
    """
    output = outcome.output
    structured: dict[str, Any] = output if isinstance(output, dict) else {"tasks": output}
    if outcome.ok:
        text = json.dumps(structured, ensure_ascii=False)
    else:
        text = str(structured.get("error", "the tool call failed"))
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content=structured,
        is_error=not outcome.ok,
    )


def _error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=message)],
        structured_content={"error": message},
        is_error=True,
    )


def build_server(store: StoreSource, resolve_user: UserResolver) -> Server[Any]:
    """An MCP server with the six task tools, acting for the user ``resolve_user()`` returns.

    Args:
        store: the store, or a function giving the store of the call being served (HTTP).
        resolve_user: called once per tool call; a ConvstoreError it raises (e.g.
            InvalidCredentials) is answered as a tool error.
    """
    tools = tool_definitions()
    schemas = {tool.name: tool.input_schema for tool in tools}

    def current_store() -> Store:
        return store if isinstance(store, Store) else store()

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        if params.name not in TOOLS:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"unknown tool {params.name!r}; available: {', '.join(TOOLS)}",
            )
        try:
            user_id = await resolve_user()
            outcome = await run_tool(current_store(), user_id, params.name, params.arguments or {})
        except ConvstoreError as exc:
            return _error_result(exc.message)
        except Exception:
            log.exception("MCP tool %s failed unexpectedly", params.name)
            return _error_result(UNEXPECTED)
        return to_result(outcome)

    return Server(
        SERVER_NAME,
        version=__version__,
        title="convstore tasks",
        instructions=INSTRUCTIONS,
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def local_user(store: Store, email: str) -> UserRead:
    """The user with ``email``, created (without a password) when there is none yet.

    Raises:
        InvalidInput: ``email`` is not a valid address.
        PermissionDenied: the user is deactivated.
    """
    try:
        user = await store.users.get_by_email(email)
    except NotFound:
        try:
            user = await store.users.create(email=email)
            log.info("created user %s (no password) for the MCP server", user.email)
        except Conflict:  # created meanwhile by another process
            user = await store.users.get_by_email(email)
    if not user.is_active:
        raise PermissionDenied(f"user {user.email} is deactivated")
    return user


def fixed_user(user_id: uuid.UUID) -> UserResolver:
    """A resolver that always answers ``user_id`` (one local user, as over stdio)."""

    async def resolve() -> uuid.UUID:
        return user_id

    return resolve


async def run_stdio(settings: Settings, email: str) -> None:
    """Serve MCP over stdin/stdout for the user with ``email`` (created when missing).

    Opens (and migrates) ``settings.database_url`` first, so a bad database or email fails
    before any protocol traffic. Logs go to stderr: stdout is the protocol channel (and the
    SDK points fd 1 at stderr while serving, so stray prints cannot corrupt it).
    """
    async with convstore.open(settings=settings, migrate=True) as store:
        user = await local_user(store, email)
        log.info("serving MCP over stdio for %s", user.email)
        server = build_server(store, fixed_user(user.id))
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
