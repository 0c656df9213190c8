"""Authentication payloads: register, login, tokens, password reset, external identity."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from convstore.kit.schemas import ReadSchema, Schema
from convstore.users.schemas import Email, Password, UserName

OpaqueToken = Annotated[str, Field(min_length=16, max_length=512, pattern=r"^[A-Za-z0-9_\-\.]+$")]
"""A refresh or reset token as handed to the client (never stored in this form)."""
JWTString = Annotated[str, Field(min_length=16, max_length=8192)]
"""A compact JWS; anything above 8 KiB is refused before decoding."""


class RegisterRequest(Schema):
    email: Email
    password: Password = Field(repr=False)
    name: UserName | None = None


class LoginRequest(Schema):
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=128)]


class TokenPair(ReadSchema):
    """What a successful login or refresh returns."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshRequest(Schema):
    refresh_token: OpaqueToken


class LogoutRequest(Schema):
    refresh_token: OpaqueToken | None = None


class PasswordChangeRequest(Schema):
    current_password: Annotated[str, Field(min_length=1, max_length=128)]
    new_password: Password


class PasswordResetRequest(Schema):
    email: Email


class PasswordResetConfirm(Schema):
    token: OpaqueToken
    new_password: Password


class ExternalLoginRequest(Schema):
    """Exchange a JWT from a configured external issuer (Better Auth, an OIDC provider)."""

    id_token: JWTString


class RefreshTokenRead(ReadSchema):
    """One signed-in session (a refresh-token family member), as shown to its owner."""

    id: uuid.UUID
    family_id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    user_agent: str | None


class AccessClaims(ReadSchema):
    """The claims convstore puts in (and requires of) its access tokens."""

    sub: str
    iss: str
    aud: str
    exp: int
    iat: int
    typ: Literal["access"]
    jti: str | None = None


__all__ = [
    "AccessClaims",
    "ExternalLoginRequest",
    "LoginRequest",
    "LogoutRequest",
    "PasswordChangeRequest",
    "PasswordResetConfirm",
    "PasswordResetRequest",
    "RefreshRequest",
    "RefreshTokenRead",
    "RegisterRequest",
    "TokenPair",
]
