"""Refresh tokens: one row per issued token, hashed, chained into rotation families."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from convstore.kit.base import Base, UTCTimestamp, UTCTimestampOrNone, UUIDPk
from convstore.kit.types import DateTimeUTC


class RefreshToken(Base):
    """An issued refresh token. Only its SHA-256 hash is stored, never the token.

    Every refresh rotates: the presented row is revoked and points at its successor through
    ``replaced_by``. All rows of one login share ``family_id``; presenting an already rotated
    token revokes the whole family.
    """

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index(None, "user_id"), Index(None, "family_id"))

    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    revoked_at: Mapped[UTCTimestampOrNone]
    replaced_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[UTCTimestamp]
    user_agent: Mapped[str | None] = mapped_column(String(512))


class PasswordResetToken(Base):
    """A single-use password reset token; only its SHA-256 hash is stored."""

    __tablename__ = "password_reset_tokens"
    __table_args__ = (Index(None, "user_id"),)

    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC)
    used_at: Mapped[UTCTimestampOrNone]
    created_at: Mapped[UTCTimestamp]


class IdempotencyKey(Base):
    """The first response to a POST carrying ``Idempotency-Key``, replayed for 24 hours.

    Keys are per user: the same key from another user is a different key. The row is claimed in
    the same transaction as the write it protects, so a duplicate never writes twice.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"), Index(None, "created_at"))

    id: Mapped[UUIDPk]
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[UTCTimestamp]
