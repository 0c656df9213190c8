"""The users table: the root of ownership. Deleting a user deletes everything they own."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from convstore.kit.base import RecordModel

USER_ROLES = ("user", "admin")


class User(RecordModel):
    """A person who owns conversations and tasks.

    ``email`` is stored lower-cased and is unique. ``hashed_password`` is null for users whose
    identity comes from an external issuer; those are found by ``(auth_provider, auth_subject)``.
    """

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'admin')", name="role"),
        UniqueConstraint("auth_provider", "auth_subject"),
    )

    email: Mapped[str] = mapped_column(String(320), unique=True)
    hashed_password: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="user", server_default="user")
    auth_provider: Mapped[str | None] = mapped_column(String(255))
    auth_subject: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
