"""Streaming frames: what SSE events and WebSocket messages of a chat turn carry.

Every frame of a turn has an ``id``: 1, 2, 3… in the order the turn produced them (the SSE
``id:`` field and the WebSocket frame's ``id``), so a client that reconnects names the last one
it saw and receives the rest (see docs/chat.md).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, JsonValue

from convstore.conversations.schemas import MessageRead
from convstore.kit.schemas import ReadSchema

FrameId = Annotated[int, Field(ge=1, description="Position of the frame in its turn, from 1.")]


class ChunkFrame(ReadSchema):
    """A piece of the assistant's reply as it is produced."""

    type: Literal["chunk"] = "chunk"
    id: FrameId
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    index: int = Field(ge=0, description="Position of this chunk in the reply's text, from 0.")
    delta: str


class ToolCallFrame(ReadSchema):
    """The assistant started a tool call."""

    type: Literal["tool_call"] = "tool_call"
    id: FrameId
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    call_id: str
    name: str
    arguments: dict[str, JsonValue]


class ToolResultFrame(ReadSchema):
    """A tool call ended: ``result`` when ``ok``, else ``error``."""

    type: Literal["tool_result"] = "tool_result"
    id: FrameId
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    call_id: str
    name: str
    ok: bool
    result: JsonValue = None
    error: str | None = None


class DoneFrame(ReadSchema):
    """The turn finished; ``message`` is the stored assistant message (status ``complete``)."""

    type: Literal["done"] = "done"
    id: FrameId
    message: MessageRead


class ErrorFrame(ReadSchema):
    """The turn failed; the user message is kept and the assistant message has status ``error``.

    Frames refused before a turn starts (bad input, rate limits) have no ``id``.
    """

    type: Literal["error"] = "error"
    id: int | None = None
    code: str
    detail: str
    conversation_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None
    retryable: bool = True


Frame = ChunkFrame | ToolCallFrame | ToolResultFrame | DoneFrame | ErrorFrame
StreamFrame = Annotated[Frame, Field(discriminator="type")]
"""Any frame, told apart by ``type``."""

FINAL_TYPES = ("done", "error")
"""A turn's last frame is one of these."""


def tool_error(output: Any) -> str:
    """The message of a failed tool call's output."""
    if isinstance(output, dict) and isinstance(output.get("error"), str):
        return str(output["error"])
    return "the tool call failed"
