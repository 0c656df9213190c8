"""Authentication: registration, login, refresh-token rotation, logout, password change and
reset, and users whose identity comes from an external issuer.

Refresh tokens are opaque and only their SHA-256 hashes are stored. A rotation's child token is
``HMAC(secret, parent)``: presenting the parent again within the grace window yields the same
child (so two tabs refreshing at once share one session), while a family never has more than
one live token. Presenting a rotated token after the window revokes the whole family.

Every method works on the connection it is given; the entry points (``auth/router.py``,
``http/deps.py``) open the transactions and name the user they act for (``Database.act_as``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.auth.notifier import Notifier
from convstore.auth.passwords import Passwords, check_password_policy
from convstore.auth.repository import RefreshTokenRepository, ResetTokenRepository
from convstore.auth.schemas import RegisterRequest, TokenPair
from convstore.auth.tokens import AccessClaims, AccessTokens, ExternalIssuer, token_issuer
from convstore.config import Settings
from convstore.errors import Conflict, InvalidCredentials, InvalidInput
from convstore.kit.schemas import clean_line
from convstore.kit.types import utc_now, uuid7
from convstore.kit.validation import parse
from convstore.users.repository import UserRepository
from convstore.users.schemas import UserCreate, UserRead, UserUpdate
from convstore.users.service import user as user_service
from convstore.users.service import user_read

USER_AGENT_MAX = 512


def hash_token(raw: str) -> str:
    """The stored form of an opaque token."""
    return hashlib.sha256(raw.encode()).hexdigest()


def _bad_credentials() -> InvalidCredentials:
    return InvalidCredentials("incorrect email or password")


def _profile_field(name: str, value: Any) -> str | None:
    """``value`` as the user's field ``name`` (normalised like any input), or None if the
    field's rules refuse it."""
    if not isinstance(value, str):
        return None
    try:
        kept: str | None = getattr(parse(UserUpdate, {name: value}), name)
    except InvalidInput:
        return None
    return kept


def bad_refresh() -> InvalidCredentials:
    """The refusal of a refresh token that is unknown, expired or reused."""
    return InvalidCredentials("invalid or expired refresh token")


def invalid_reset() -> InvalidInput:
    """The refusal of a reset token that is unknown, used or expired."""
    return InvalidInput("invalid, used or expired reset token", field="token")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user, and the session (refresh-token family) of their token, or
    the API key they signed in with."""

    user: UserRead
    session_id: uuid.UUID | None
    api_key_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class PasswordOnFile:
    """What re-authentication checks against: ``required`` is False for users without a
    password (an external identity); ``hashed`` is None for a user who is gone."""

    required: bool
    hashed: str | None


@dataclass
class Auth:
    """Everything authentication needs, built once per application."""

    settings: Settings
    passwords: Passwords
    access: AccessTokens
    secret: bytes
    notifier: Notifier
    external: ExternalIssuer | None = None

    def _child_token(self, parent: str) -> str:
        digest = hmac.new(self.secret, b"refresh:" + parent.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    async def new_password(self, password: str, field: str = "password") -> str:
        """The hash of a new password that passes the policy (no connection: hashing is slow)."""
        check_password_policy(password, field)
        return await self.passwords.hash(password)

    async def register(self, conn: AsyncConnection, data: RegisterRequest, hashed: str) -> UserRead:
        """Create the account of ``data`` with the password hash from :meth:`new_password`."""
        create = UserCreate(email=data.email, password=data.password, name=data.name)
        return await user_service.create(conn, create, hashed)

    async def login_candidate(self, conn: AsyncConnection, email: str) -> Any:
        """The user row an email signs in to, or None."""
        return await UserRepository(conn).get_by_email(email.strip().lower())

    async def check_login(self, row: Any, password: str) -> tuple[uuid.UUID, str | None]:
        """The user of a login candidate and the password's new hash when the hashing
        parameters changed. Unknown emails cost one password hash too (no timing oracle).

        Raises:
            InvalidCredentials: unknown, inactive, or the wrong password.
        """
        hashed = row["hashed_password"] if row is not None and row["is_active"] else None
        ok, rehashed = await self.passwords.verify(hashed, password)
        if row is None or not ok:
            raise _bad_credentials()
        return row["id"], rehashed

    async def open_session(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        rehashed: str | None,
        user_agent: str | None,
    ) -> TokenPair:
        """After :meth:`check_login`: store the rehashed password, if any, and start a session."""
        if rehashed is not None:
            await UserRepository(conn).update(user_id, {"hashed_password": rehashed})
        return await self.start_session(conn, user_id, user_agent)

    async def start_session(
        self, conn: AsyncConnection, user_id: uuid.UUID, user_agent: str | None
    ) -> TokenPair:
        """A token pair opening a new refresh-token family."""
        now = utc_now()
        raw = secrets.token_urlsafe(32)
        family = uuid7()
        await RefreshTokenRepository(conn).insert(
            {
                "id": uuid7(),
                "user_id": user_id,
                "token_hash": hash_token(raw),
                "family_id": family,
                "created_at": now,
                "expires_at": now + timedelta(seconds=self._idle_ttl()),
                "user_agent": clean_line(user_agent or "", USER_AGENT_MAX) or None,
            }
        )
        return self._pair(user_id, family, raw)

    def _idle_ttl(self) -> int:
        return min(
            self.settings.refresh_token_ttl_seconds,
            self.settings.refresh_token_absolute_ttl_seconds,
        )

    def _pair(self, user_id: uuid.UUID, family: uuid.UUID, refresh: str) -> TokenPair:
        return TokenPair(
            access_token=self.access.issue(user_id, family),
            refresh_token=refresh,
            expires_in=self.access.ttl,
        )

    async def refresh_owner(self, conn: AsyncConnection, raw: str) -> uuid.UUID | None:
        """The owner of the refresh token ``raw``, or None (read under its hash)."""
        return await RefreshTokenRepository(conn).owner(hash_token(raw))

    async def rotate(self, conn: AsyncConnection, raw: str) -> TokenPair | None:
        """Rotate ``raw`` (for its owner): revoke it, issue its child. See the module docstring
        for reuse. None when ``raw`` was reused and its family has just been revoked: the
        caller commits the revocation, then refuses (the refusal must not roll it back).

        Raises:
            InvalidCredentials: unknown, expired, or its user is no longer active.
        """
        repo = RefreshTokenRepository(conn)
        now = utc_now()
        child, child_id = self._child_token(raw), uuid7()
        row = await repo.rotate(hash_token(raw), now=now, child_id=child_id)
        if row is not None:
            started = await repo.family_started(row["family_id"]) or now
            deadline = started + timedelta(seconds=self.settings.refresh_token_absolute_ttl_seconds)
            expires = min(now + timedelta(seconds=self._idle_ttl()), deadline)
            if expires <= now:
                raise bad_refresh()
            await repo.insert(
                {
                    "id": child_id,
                    "user_id": row["user_id"],
                    "token_hash": hash_token(child),
                    "family_id": row["family_id"],
                    "created_at": now,
                    "expires_at": expires,
                    "user_agent": row["user_agent"],
                }
            )
            await self._require_active(conn, row["user_id"])
            return self._pair(row["user_id"], row["family_id"], child)
        return await self._reuse(conn, repo, raw, child, now)

    async def _reuse(
        self,
        conn: AsyncConnection,
        repo: RefreshTokenRepository,
        raw: str,
        child: str,
        now: datetime,
    ) -> TokenPair | None:
        old = await repo.get_by_hash(hash_token(raw))
        if old is None or old["revoked_at"] is None:
            raise bad_refresh()  # unknown, or live but expired
        grace = timedelta(seconds=self.settings.refresh_reuse_grace_seconds)
        current = await repo.get(old["replaced_by"]) if old["replaced_by"] else None
        if (
            current is not None
            and current["revoked_at"] is None
            and current["expires_at"] > now
            and now - old["revoked_at"] <= grace
        ):
            await self._require_active(conn, old["user_id"])
            return self._pair(old["user_id"], old["family_id"], child)
        await repo.revoke_family(old["family_id"], old["user_id"], now)
        return None  # the caller commits the revocation, then refuses

    async def _require_active(self, conn: AsyncConnection, user_id: uuid.UUID) -> None:
        row = await UserRepository(conn).get(user_id)
        if row is None or not row["is_active"]:
            raise bad_refresh()

    async def logout(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        session_id: uuid.UUID | None,
        raw: str | None,
        everywhere: bool,
    ) -> None:
        """End this session (the access token's, or the refresh token's), or all of them."""
        repo = RefreshTokenRepository(conn)
        now = utc_now()
        if everywhere:
            await repo.revoke_user(user_id, now)
            return
        if raw is not None:
            row = await repo.get_by_hash(hash_token(raw))
            if row is not None and row["user_id"] == user_id:
                session_id = row["family_id"]
        if session_id is not None:
            await repo.revoke_family(session_id, user_id, now)

    async def password_on_file(self, conn: AsyncConnection, user_id: uuid.UUID) -> PasswordOnFile:
        """What :meth:`check_current_password` checks against (read first, checked after)."""
        row = await UserRepository(conn).get(user_id)
        if row is not None and row["hashed_password"] is None:
            return PasswordOnFile(required=False, hashed=None)
        return PasswordOnFile(required=True, hashed=row["hashed_password"] if row else None)

    async def check_current_password(self, on_file: PasswordOnFile, password: str | None) -> None:
        """Re-authentication before a sensitive change (users without a password skip it).

        Raises:
            InvalidInput: missing or wrong (a 422 naming ``current_password``, not a 401 that
                would make clients drop their session).
        """
        if not on_file.required:
            return
        if password is None:
            raise InvalidInput("required to change this", field="current_password")
        ok, _ = await self.passwords.verify(on_file.hashed, password)
        if not ok:
            raise InvalidInput("the current password is not correct", field="current_password")

    async def set_password(self, conn: AsyncConnection, user_id: uuid.UUID, hashed: str) -> None:
        """Store a new password hash and end every session and pending reset of the user."""
        now = utc_now()
        await UserRepository(conn).update(user_id, {"hashed_password": hashed, "updated_at": now})
        await RefreshTokenRepository(conn).revoke_user(user_id, now)
        await ResetTokenRepository(conn).expire_for_user(user_id, now)

    async def reset_target(self, conn: AsyncConnection, email: str) -> Any:
        """The user row a password reset for ``email`` goes to, or None (unknown, inactive, or
        without a password)."""
        row = await UserRepository(conn).get_by_email(email.strip().lower())
        if row is None or not row["is_active"] or row["hashed_password"] is None:
            return None
        return row

    async def issue_reset(self, conn: AsyncConnection, user_id: uuid.UUID) -> tuple[str, datetime]:
        """A new reset token of ``user_id`` (for that user): the raw token and its expiry."""
        raw = secrets.token_urlsafe(32)
        now = utc_now()
        expires = now + timedelta(seconds=self.settings.password_reset_ttl_seconds)
        await ResetTokenRepository(conn).insert(
            {
                "id": uuid7(),
                "user_id": user_id,
                "token_hash": hash_token(raw),
                "expires_at": expires,
                "created_at": now,
            }
        )
        return raw, expires

    async def send_reset(self, email: str, raw: str, expires: datetime) -> None:
        """Deliver a reset token (after its transaction has committed)."""
        template = self.settings.password_reset_url
        link = template.replace("{token}", raw) if template else None
        await self.notifier.password_reset(email, raw, link, expires)

    async def reset_owner(self, conn: AsyncConnection, raw: str) -> uuid.UUID | None:
        """The owner of the reset token ``raw``, or None (read under its hash)."""
        return await ResetTokenRepository(conn).owner(hash_token(raw))

    async def confirm_reset(self, conn: AsyncConnection, raw: str, hashed: str) -> None:
        """Use the reset token ``raw`` once (for its owner): set the password and end every
        session.

        Raises:
            InvalidInput: the token is unknown, used or expired (names ``token``).
        """
        user_id = await ResetTokenRepository(conn).consume(hash_token(raw), utc_now())
        if user_id is None:
            raise invalid_reset()
        await self.set_password(conn, user_id, hashed)

    async def external_claims(self, token: str) -> dict[str, Any] | None:
        """The verified claims of ``token`` when the configured external issuer signed it, or
        None when it is not that issuer's (then it is ours: :meth:`AccessTokens.verify`)."""
        if self.external is None or token_issuer(token) != self.external.issuer:
            return None
        return await self.external.verify(token)

    async def external_principal(
        self, conn: AsyncConnection, claims: dict[str, Any]
    ) -> Principal | None:
        """The caller of verified external ``claims``, or None on their first sight.

        Raises:
            InvalidCredentials: the account is inactive.
        """
        assert self.external is not None
        row = await UserRepository(conn).get_by_identity(self.external.issuer, claims["sub"])
        if row is None:
            return None
        if not row["is_active"]:
            raise InvalidCredentials("invalid or expired token")
        return Principal(user_read(row), None)

    async def session_principal(self, conn: AsyncConnection, access: AccessClaims) -> Principal:
        """The caller behind one of our verified access tokens (read for its user): the
        token's session must still be live and the account active.

        Raises:
            InvalidCredentials: the session has ended or the account is inactive.
        """
        active = await RefreshTokenRepository(conn).active_user(
            access.user_id, access.session_id, utc_now()
        )
        if active is None:
            raise InvalidCredentials("invalid or expired token")
        return Principal(user_read(active), access.session_id)

    async def external_login_claims(self, id_token: str) -> dict[str, Any]:
        """The verified claims of an external issuer's token exchanged for a session.

        Raises:
            InvalidCredentials: not the configured issuer's, or not valid.
        """
        claims = await self.external_claims(id_token)
        if claims is None:
            raise InvalidCredentials("invalid or expired token")
        return claims

    async def provision(self, conn: AsyncConnection, claims: dict[str, Any]) -> UserRead:
        """The user for (issuer, subject), created on first sight (race-free)."""
        assert self.external is not None
        repo = UserRepository(conn)
        issuer, subject = self.external.issuer, claims["sub"]
        row = await repo.get_by_identity(issuer, subject)
        if row is None:
            row = await self._create_external(conn, issuer, subject, claims)
        if not row["is_active"]:
            raise InvalidCredentials("invalid or expired token")
        return user_read(row)

    def _external_profile(self, claims: dict[str, Any]) -> tuple[str | None, str | None]:
        """The email and name a first sign-in provisions, each None when not kept.

        The address is kept only when the issuer vouches for it: ``email_verified`` is the
        boolean true, or ``external_email_verified`` says the issuer only issues verified
        addresses (an explicit false still wins). At many issuers anyone can type any address
        into a profile; trusted blindly, it would give them that address here. A claim that
        fails the rules of the user's field (not an address, control characters, too long) is
        dropped rather than refusing the sign-in over a profile detail.
        """
        verified = claims.get("email_verified")
        trusted = verified is True or (self.settings.external_email_verified and verified is None)
        email = _profile_field("email", claims.get("email")) if trusted else None
        return email, _profile_field("name", claims.get("name"))

    async def _create_external(
        self, conn: AsyncConnection, issuer: str, subject: str, claims: dict[str, Any]
    ) -> Any:
        repo = UserRepository(conn)
        email, name = self._external_profile(claims)
        if email is None or await repo.get_by_email(email) is not None:
            digest = hashlib.sha256(f"{issuer}|{subject}".encode()).hexdigest()[:24]
            email = f"{digest}@external.invalid"  # reserved domain: never deliverable
        now = utc_now()
        try:
            async with conn.begin_nested():
                return await repo.insert(
                    {
                        "id": uuid7(),
                        "email": email,
                        "name": name,
                        "role": "user",
                        "auth_provider": issuer,
                        "auth_subject": subject,
                        "is_active": True,
                        "hashed_password": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        except IntegrityError:
            row = await repo.get_by_identity(issuer, subject)  # a concurrent first sight won
            if row is None:
                raise Conflict("could not provision the external user") from None
            return row
