"""The stream_frames table: the frames of chat turns, kept so that a client can resume."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from convstore.kit.base import Base, UTCTimestamp, UUIDPk
from convstore.kit.types import JSONType


class StreamFrame(Base):
    """One frame of a chat turn (``seq`` is the frame's ``id``: 1, 2, 3…), or with ``seq`` 0
    a request to cancel the turn. The turn writes its frames in batches; a client that
    reconnects (or a second tab) reads those after the last one it has, on any server."""

    __tablename__ = "stream_frames"
    __table_args__ = (
        UniqueConstraint("message_id", "seq"),
        Index(None, "user_id", "message_id", "seq"),
        Index(None, "user_id", "created_at"),
    )

    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    message_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("messages.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    frame: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[UTCTimestamp]
