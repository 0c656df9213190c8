"""Queries on ``stream_frames``, always for one user."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.assistant.models import StreamFrame
from convstore.kit.types import utc_now, uuid7

stream_frames = cast(Table, StreamFrame.__table__)
CANCEL_SEQ = 0
"""The ``seq`` of a turn's cancel request (its frames count from 1)."""


class StreamFrameRepository:
    """The stored frames of one user's chat turns."""

    def __init__(self, conn: AsyncConnection, user_id: uuid.UUID) -> None:
        self.conn = conn
        self.user_id = user_id

    def _of(self, message_id: uuid.UUID) -> Any:
        return and_(
            stream_frames.c.user_id == self.user_id, stream_frames.c.message_id == message_id
        )

    async def add(
        self,
        conversation_id: uuid.UUID,
        message_id: uuid.UUID,
        frames: Sequence[tuple[int, dict[str, Any]]],
    ) -> None:
        """Store ``(seq, frame)`` pairs of one turn in one statement."""
        if not frames:
            return
        now = utc_now()
        rows = [
            {
                "id": uuid7(),
                "user_id": self.user_id,
                "conversation_id": conversation_id,
                "message_id": message_id,
                "seq": seq,
                "frame": frame,
                "created_at": now,
            }
            for seq, frame in frames
        ]
        await self.conn.execute(insert(stream_frames), rows)

    async def after(
        self, message_id: uuid.UUID, after: int, limit: int
    ) -> list[tuple[int, dict[str, Any]]]:
        """The turn's frames with ``seq`` above ``after``, in order, at most ``limit``."""
        stmt = (
            select(stream_frames.c.seq, stream_frames.c.frame)
            .where(self._of(message_id), stream_frames.c.seq > max(after, CANCEL_SEQ))
            .order_by(stream_frames.c.seq)
            .limit(limit)
        )
        return [(row.seq, row.frame) for row in await self.conn.execute(stmt)]

    async def has(self, message_id: uuid.UUID, seq: int) -> bool:
        """Whether the turn has the row ``seq`` (``CANCEL_SEQ``: a cancel was requested)."""
        stmt = select(func.count()).where(self._of(message_id), stream_frames.c.seq == seq)
        return bool((await self.conn.execute(stmt)).scalar_one())

    async def delete_older_than(self, before: datetime) -> int:
        """Delete this user's frames stored before ``before``; how many."""
        stmt = delete(stream_frames).where(
            stream_frames.c.user_id == self.user_id, stream_frames.c.created_at < before
        )
        return (await self.conn.execute(stmt)).rowcount
