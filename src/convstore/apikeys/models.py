"""The api_keys table: long-lived secrets with which a user's programs sign in."""

from __future__ import annotations

import uuid

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from convstore.kit.base import Base, UTCTimestamp, UTCTimestampOrNone, UUIDPk


class ApiKey(Base):
    """An API key of one user. Only the SHA-256 hash of the secret is stored, with its first
    12 characters (``prefix``) so lists can tell keys apart; the secret itself is shown once.

    A key is live while its user is active and ``expires_at`` (if any) is in the future;
    revoking it deletes the row. ``last_used_at`` is written at most once a minute.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("length(trim(name)) BETWEEN 1 AND 100", name="name_length"),
        Index(None, "user_id", "created_at", "id"),
    )

    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[UTCTimestamp]
    expires_at: Mapped[UTCTimestampOrNone]
    last_used_at: Mapped[UTCTimestampOrNone]
