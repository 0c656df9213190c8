"""The assistant protocol: what the chat turn needs from a provider (builtin, OpenAI-compatible).

A provider reads the turn (the history, ending with the user's message), calls tools through
the :class:`ToolRunner` it is given (which executes and records them), and yields the text of
its answer as it is produced, plus a usage report.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.assistant.executor import ToolOutcome, ToolScope, execute
from convstore.assistant.external import Tool
from convstore.conversations.schemas import TOOL_NAME_PATTERN, MessageRead
from convstore.errors import ConvstoreError
from convstore.kit.jsoninput import loads

_TOOL_NAME = re.compile(TOOL_NAME_PATTERN)


class ProviderError(ConvstoreError):
    """The model provider failed (unreachable, an error answer, a malformed stream)."""

    status_code = 502
    code = "provider_error"


class ProviderTimeout(ProviderError):
    """The model provider did not answer in time."""

    status_code = 504
    code = "provider_timeout"


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    counts: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolStep:
    """A tool call started (``outcome`` None) or ended: yielded by :meth:`ToolRunner.stream`
    so that the chat sends its ``tool_call``/``tool_result`` frames as they happen."""

    call_id: str
    outcome: ToolOutcome | None = None


AssistantEvent = TextDelta | Usage | ToolStep


@dataclass(frozen=True)
class Turn:
    """One turn: the conversation so far (oldest first, ending with the user's message)."""

    history: list[MessageRead]
    user_id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    now: datetime
    tz: tzinfo


class Units(Protocol):
    """Opens the units of work of a chat turn, given by its entry point (the facade,
    :class:`convstore.Store`, is one): a turn outlives the request that starts it and must hold
    no transaction while the model answers, so each of its later steps (the history, each tool
    call, the final reply) is a short transaction of its own."""

    def reading(
        self, user_id: uuid.UUID | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read unit for ``user_id``."""
        ...

    def writing(
        self, user_id: uuid.UUID | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write unit for ``user_id``: committed on success, rolled back on error."""
        ...


class Assistant(Protocol):
    """A provider of assistant replies."""

    name: str

    def run(self, turn: Turn, tools: ToolRunner) -> AsyncGenerator[AssistantEvent, None]:
        """Yield the reply's text as it is produced (and usage); call tools through ``tools``.

        The chat closes the generator when the turn ends early (the client went away, a
        timeout): a provider releases what it holds (its model stream) on close.
        """
        ...


@dataclass
class ToolRunner:
    """Executes tool calls for one turn, each in its own short transaction, and keeps what
    was called and what came back (stored on the assistant message at the end)."""

    units: Units
    scope: ToolScope
    max_calls: int = 16
    calls: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Tool] = field(default_factory=dict)
    """Tools beyond the task tools (the library user's, the MCP servers'), by name."""

    def extra_schemas(self) -> list[dict[str, Any]]:
        """The extra tools in the Chat Completions ``tools`` format."""
        return [tool.schema() for tool in self.extra.values()]

    async def call(
        self, name: str, arguments: str | dict[str, Any], call_id: str | None = None
    ) -> ToolOutcome:
        """Run one tool call (or refuse it past ``max_calls``) and record it."""
        outcome: ToolOutcome | None = None
        async for step in self.stream(name, arguments, call_id):
            outcome = step.outcome
        assert outcome is not None
        return outcome

    async def stream(
        self, name: str, arguments: str | dict[str, Any], call_id: str | None = None
    ) -> AsyncGenerator[ToolStep, None]:
        """Like :meth:`call`, yielding a :class:`ToolStep` once the call is recorded (before
        it runs) and one with its outcome once it ended; a provider passes both on, so that
        the chat's clients see the tool step as it starts."""
        call_id = call_id or f"call_{uuid.uuid4().hex[:24]}"
        self.calls.append(
            {"id": call_id, "name": _safe_name(name), "arguments": _as_object(arguments)}
        )
        yield ToolStep(call_id)
        if len(self.calls) > self.max_calls:
            outcome = ToolOutcome(
                call_id,
                name,
                False,
                {"error": f"too many tool calls in one turn (>{self.max_calls})"},
            )
        elif name in self.extra:
            outcome = await _call_extra(self.extra[name], call_id, arguments)
        else:
            async with self.units.writing(self.scope.user_id) as conn:
                outcome = await execute(conn, self.scope, call_id, name, arguments)
        self.results.append(outcome.as_result())
        yield ToolStep(call_id, outcome)

    def reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read unit for the turn's user (a provider reading what it needs to plan)."""
        return self.units.reading(self.scope.user_id)


async def _call_extra(tool: Tool, call_id: str, arguments: str | dict[str, Any]) -> ToolOutcome:
    """Run a tool beyond the task tools: its failure is the model's tool error, not the turn's."""
    args = _as_object(arguments)
    if "_raw" in args and len(args) == 1:
        return ToolOutcome(call_id, tool.name, False, {"error": "arguments are not a JSON object"})
    try:
        output = await tool.call(args)
        json.dumps(output)
    except Exception as exc:  # the tool's own failure, whatever it is, goes to the model
        return ToolOutcome(call_id, tool.name, False, {"error": str(exc) or type(exc).__name__})
    return ToolOutcome(call_id, tool.name, True, output)


def _safe_name(name: str) -> str:
    return name if _TOOL_NAME.match(name) else "invalid_tool_name"


def _as_object(arguments: str | dict[str, Any]) -> dict[str, Any]:
    """Arguments as stored: a JSON object (unparsable text is kept under ``_raw``)."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {"_raw": arguments[:4096]}
    return value if isinstance(value, dict) else {"_raw": arguments[:4096]}
