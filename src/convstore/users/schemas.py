"""User input and output models. No read model carries a password hash."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, EmailStr, Field

from convstore.kit.schemas import (
    IDSchema,
    Schema,
    TimestampedSchema,
    check_identifier,
    check_line,
)

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128


def _normalize_email(value: str) -> str:
    return value.strip().lower()


Email = Annotated[EmailStr, Field(max_length=320), AfterValidator(_normalize_email)]
"""An email address, compared and stored in lower case."""
Password = Annotated[str, Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)]
"""A password exactly as typed: 8 to 128 characters, no composition rules, never trimmed."""
EmailPrefix = Annotated[
    str,
    Field(min_length=1, max_length=320),
    AfterValidator(check_line),
    AfterValidator(_normalize_email),
]
"""The start of an email address, compared in lower case."""
UserName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_line)]
UserRole = Literal["user", "admin"]
IDENTITY_MAX_LENGTH = 255
Identity = Annotated[
    str, Field(min_length=1, max_length=IDENTITY_MAX_LENGTH), AfterValidator(check_identifier)
]
"""An external issuer, or a subject at it: one line, kept exactly."""


class UserCreate(Schema):
    email: Email
    password: Password | None = Field(default=None, repr=False)
    name: UserName | None = None
    role: UserRole = "user"
    auth_provider: Identity | None = None
    auth_subject: Identity | None = None


class UserUpdate(Schema):
    """Every field optional; only the fields given change."""

    email: Email | None = None
    password: Password | None = Field(default=None, repr=False)
    name: UserName | None = None
    role: UserRole | None = None
    is_active: bool | None = None


class UserFilter(Schema):
    """The admin list's filters: an email prefix (compared in lower case, taken literally)
    and the account's state."""

    email_prefix: EmailPrefix | None = None
    is_active: bool | None = None


class UserRead(IDSchema, TimestampedSchema):
    email: str
    name: str | None
    role: UserRole
    auth_provider: str | None
    is_active: bool
