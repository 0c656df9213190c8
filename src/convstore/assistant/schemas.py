"""Streaming frames: what SSE events and WebSocket messages of a chat turn carry."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field

from convstore.conversations.schemas import MessageRead
from convstore.kit.schemas import ReadSchema


class ChunkFrame(ReadSchema):
    """A piece of the assistant's reply as it is produced."""

    type: Literal["chunk"] = "chunk"
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    index: int = Field(ge=0, description="Position of this chunk in the stream, from 0.")
    delta: str


class DoneFrame(ReadSchema):
    """The turn finished; ``message`` is the stored assistant message (status ``complete``)."""

    type: Literal["done"] = "done"
    message: MessageRead


class ErrorFrame(ReadSchema):
    """The turn failed; the user message is kept and the assistant message has status ``error``."""

    type: Literal["error"] = "error"
    code: str
    detail: str
    conversation_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None
    retryable: bool = True


StreamFrame = Annotated[ChunkFrame | DoneFrame | ErrorFrame, Field(discriminator="type")]
"""Any frame, told apart by ``type``."""
