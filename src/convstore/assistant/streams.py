"""A chat turn's frames in the store: written in batches by the turn, read by any server.

A turn (:meth:`convstore.assistant.service.ChatService.start`) adds each frame to its
:class:`FrameLog`; the log writes what it holds every ``CONVSTORE_CHAT_FRAMES_FLUSH_SECONDS``
in one statement, and in the same transaction looks for a cancel request (a row with ``seq``
0, written by :func:`request_cancel` on whichever server the user asked). :func:`follow` reads
a turn's frames after a given id, from the store, and keeps polling until the turn's last
frame (``done`` or ``error``): a client that reconnects, on any server, receives exactly the
frames it missed and then the rest.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.assistant.protocol import Units
from convstore.assistant.repository import CANCEL_SEQ, StreamFrameRepository
from convstore.assistant.schemas import FINAL_TYPES, ErrorFrame, Frame, StreamFrame
from convstore.conversations.schemas import MessageRead
from convstore.conversations.service import message as message_service
from convstore.errors import Conflict, NotFound
from convstore.kit.types import utc_now

BATCH_ROWS = 500
"""At most this many frames are read from the store at a time."""
_FRAME: TypeAdapter[Frame] = TypeAdapter(StreamFrame)


class FrameLog:
    """The frames of one running turn not yet in the store, and whether it was cancelled."""

    def __init__(
        self, units: Units, user_id: uuid.UUID, conversation_id: uuid.UUID, message_id: uuid.UUID
    ) -> None:
        self.units = units
        self.user_id = user_id
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.last_id = 0
        self.writes = 0
        self.final: Frame | None = None
        self.lock = asyncio.Lock()
        """Held while pending frames are written (by the flusher or the turn's last step)."""

    def add(self, frame: Frame) -> None:
        if frame.id is not None and frame.id > self.last_id:
            self.last_id = frame.id
            self.pending.append((frame.id, frame.model_dump(mode="json")))
            if frame.type in FINAL_TYPES:
                self.final = frame

    async def write(self, conn: AsyncConnection) -> bool:
        """Store the pending frames on ``conn`` (one statement; hold :attr:`lock`) and tell
        whether a cancel was asked for."""
        batch = list(self.pending)
        repo = StreamFrameRepository(conn, self.user_id)
        await repo.add(self.conversation_id, self.message_id, batch)
        cancelled = await repo.has(self.message_id, CANCEL_SEQ)
        del self.pending[: len(batch)]  # frames added meanwhile wait for the next write
        self.writes += bool(batch)
        return cancelled

    async def flush(self, prune_before: timedelta | None = None) -> bool:
        """Store the pending frames in a transaction of their own and tell whether a cancel
        was asked for; with ``prune_before``, also delete the user's frames older than that."""
        async with self.lock, self.units.writing(self.user_id) as conn:
            cancelled = await self.write(conn)
            if prune_before is not None:
                await StreamFrameRepository(conn, self.user_id).delete_older_than(
                    utc_now() - prune_before
                )
        return cancelled


async def request_cancel(
    units: Units, user_id: uuid.UUID, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> None:
    """Ask the turn writing ``message_id`` to stop, wherever it runs (it looks at its next
    flush; the reply is then stored as interrupted).

    Raises:
        NotFound: no such message of the user's.
        Conflict: the reply is not being written (it ended, or it is not a chat reply).
    """
    async with units.writing(user_id) as conn:
        reply = await message_service.get(conn, user_id, conversation_id, message_id)
        if reply.role != "assistant" or reply.status != "streaming":
            raise Conflict("this reply is not being written")
        repo = StreamFrameRepository(conn, user_id)
        if not await repo.has(message_id, CANCEL_SEQ):
            await repo.add(conversation_id, message_id, [(CANCEL_SEQ, {"type": "cancel"})])


async def check_followable(
    units: Units, user_id: uuid.UUID, conversation_id: uuid.UUID, message_id: uuid.UUID
) -> MessageRead:
    """The reply whose stream is to be followed.

    Raises:
        NotFound: no such message of the user's, or a finished one whose frames are gone.
    """
    async with units.reading(user_id) as conn:
        reply = await message_service.get(conn, user_id, conversation_id, message_id)
        if reply.status != "streaming":
            stored = await StreamFrameRepository(conn, user_id).after(message_id, 0, 1)
            if not stored:
                raise NotFound("this reply has no stored stream (it ended long ago)")
    return reply


async def follow(
    units: Units,
    user_id: uuid.UUID,
    message_id: uuid.UUID,
    after: int,
    poll_seconds: float,
    stall_seconds: float,
) -> AsyncGenerator[Frame, None]:
    """The turn's frames with an id above ``after``, from the store, until its last frame.

    A turn whose frames stop for ``stall_seconds`` (its server went away mid-turn) ends the
    stream with an ``error`` frame without id (``stream_lost``).
    """
    last_new = time.monotonic()
    while True:
        async with units.reading(user_id) as conn:
            rows = await StreamFrameRepository(conn, user_id).after(message_id, after, BATCH_ROWS)
        for seq, data in rows:
            frame = _FRAME.validate_python(data)
            after = seq
            yield frame
            if frame.type in FINAL_TYPES:
                return
        if rows:
            last_new = time.monotonic()
            if len(rows) == BATCH_ROWS:
                continue
        elif time.monotonic() - last_new > stall_seconds:
            yield ErrorFrame(
                code="stream_lost",
                detail="the turn stopped sending frames; reload the conversation",
                message_id=message_id,
            )
            return
        await asyncio.sleep(poll_seconds)
