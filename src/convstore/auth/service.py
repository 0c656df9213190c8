"""Authentication: registration, login, refresh-token rotation, logout, password change and
reset, and users whose identity comes from an external issuer.

Refresh tokens are opaque and only their SHA-256 hashes are stored. A rotation's child token is
``HMAC(secret, parent)``: presenting the parent again within the grace window yields the same
child (so two tabs refreshing at once share one session), while a family never has more than
one live token. Presenting a rotated token after the window revokes the whole family.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.auth.notifier import Notifier
from convstore.auth.passwords import Passwords, check_password_policy
from convstore.auth.repository import RefreshTokenRepository, ResetTokenRepository
from convstore.auth.schemas import RegisterRequest, TokenPair
from convstore.auth.tokens import AccessTokens, ExternalIssuer, token_issuer
from convstore.config import Settings
from convstore.db import TENANT_SETTING, TOKEN_SETTING
from convstore.errors import Conflict, InvalidCredentials, InvalidInput
from convstore.kit.schemas import clean_line
from convstore.kit.types import utc_now, uuid7
from convstore.kit.validation import parse
from convstore.store import Store
from convstore.users.repository import UserRepository
from convstore.users.schemas import UserCreate, UserRead, UserUpdate
from convstore.users.service import user as user_service

USER_AGENT_MAX = 512
log = logging.getLogger("convstore.auth")


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


def _bad_refresh() -> InvalidCredentials:
    return InvalidCredentials("invalid or expired refresh token")


async def _enter_by_token(
    store: Store,
    conn: AsyncConnection,
    owner_of: Callable[[str], Awaitable[uuid.UUID | None]],
    token_hash: str,
) -> uuid.UUID | None:
    """The owner of the token row with ``token_hash``; the rest of the transaction acts for them.

    These flows learn who the user is from a token, so on PostgreSQL the row-level security
    policies let the transaction read the one row whose hash it names (holding the token is
    the right to it); every write after that runs as its owner.
    """
    await store.db.set_local(conn, TOKEN_SETTING, token_hash)
    owner = await owner_of(token_hash)
    if owner is not None:
        await store.db.set_local(conn, TENANT_SETTING, str(owner))
    return owner


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user, and the session (refresh-token family) of their token."""

    user: UserRead
    session_id: uuid.UUID | None


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

    async def register(self, store: Store, data: RegisterRequest) -> UserRead:
        check_password_policy(data.password)
        hashed = await self.passwords.hash(data.password)
        create = UserCreate(email=data.email, password=data.password, name=data.name)
        async with store.writing() as conn:
            return await user_service.create(conn, create, hashed)

    async def login(
        self, store: Store, email: str, password: str, user_agent: str | None
    ) -> TokenPair:
        """A new session. Unknown emails cost one password hash too (no timing oracle).

        The hash is checked outside any transaction; only the session insert (and a rehash
        when the hashing parameters changed) writes.
        """
        async with store.reading() as conn:
            row = await UserRepository(conn).get_by_email(email.strip().lower())
        hashed = row["hashed_password"] if row is not None and row["is_active"] else None
        ok, rehashed = await self.passwords.verify(hashed, password)
        if row is None or not ok:
            raise _bad_credentials()
        async with store.writing(row["id"]) as conn:
            if rehashed is not None:
                await UserRepository(conn).update(row["id"], {"hashed_password": rehashed})
            return await self.start_session(conn, row["id"], user_agent)

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

    async def refresh(self, store: Store, raw: str) -> TokenPair:
        """Rotate ``raw``: revoke it, issue its child. See the module docstring for reuse.

        A reuse that revokes the family is committed before the 401 is raised: the refusal
        must not roll the revocation back.
        """
        async with store.writing() as conn:
            pair = await self._rotate(store, conn, raw)
        if pair is None:
            raise _bad_refresh()
        return pair

    async def _rotate(self, store: Store, conn: AsyncConnection, raw: str) -> TokenPair | None:
        """The new pair, or None when ``raw`` was reused and its family has just been revoked."""
        repo = RefreshTokenRepository(conn)
        now = utc_now()
        if await _enter_by_token(store, conn, repo.owner, hash_token(raw)) is None:
            raise _bad_refresh()  # unknown
        child, child_id = self._child_token(raw), uuid7()
        row = await repo.rotate(hash_token(raw), now=now, child_id=child_id)
        if row is not None:
            started = await repo.family_started(row["family_id"]) or now
            deadline = started + timedelta(seconds=self.settings.refresh_token_absolute_ttl_seconds)
            expires = min(now + timedelta(seconds=self._idle_ttl()), deadline)
            if expires <= now:
                raise _bad_refresh()
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
            raise _bad_refresh()  # unknown, or live but expired
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
            raise _bad_refresh()

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

    async def check_current_password(
        self, store: Store, user_id: uuid.UUID, password: str | None
    ) -> None:
        """Re-authentication before a sensitive change (users without a password skip it).

        Raises:
            InvalidInput: missing or wrong (a 422 naming ``current_password``, not a 401 that
                would make clients drop their session).
        """
        async with store.reading() as conn:
            row = await UserRepository(conn).get(user_id)
        if row is not None and row["hashed_password"] is None:
            return
        if password is None:
            raise InvalidInput("required to change this", field="current_password")
        ok, _ = await self.passwords.verify(row["hashed_password"] if row else None, password)
        if not ok:
            raise InvalidInput("the current password is not correct", field="current_password")

    async def change_password(
        self, store: Store, user_id: uuid.UUID, current: str, new: str, user_agent: str | None
    ) -> TokenPair:
        """Set a new password, end every session, and open a fresh one for this client."""
        await self.check_current_password(store, user_id, current)
        check_password_policy(new, "new_password")
        hashed = await self.passwords.hash(new)
        async with store.writing(user_id) as conn:
            await self.set_password(conn, user_id, hashed)
            return await self.start_session(conn, user_id, user_agent)

    async def set_password(self, conn: AsyncConnection, user_id: uuid.UUID, hashed: str) -> None:
        """Store a new password hash and end every session and pending reset of the user."""
        now = utc_now()
        await UserRepository(conn).update(user_id, {"hashed_password": hashed, "updated_at": now})
        await RefreshTokenRepository(conn).revoke_user(user_id, now)
        await ResetTokenRepository(conn).expire_for_user(user_id, now)

    async def request_reset_later(self, store: Store, email: str) -> None:
        """:meth:`request_reset`, run after the answer has been sent; a failure is logged.

        Why deferred rather than made equal: a known address costs a token insert, a commit
        that must reach the disk, and a delivery (an email, in production: the slowest part by
        far); an unknown one costs a lookup. Padding the unknown path with the same work would
        need a write that means nothing and a delivery that goes nowhere, and would still only
        be as equal as two different statements can be. With the work after the response,
        every request gets the same answer after the same work (validation and the rate limit),
        by construction. The work does not hold the connection either: the server reads the
        next request meanwhile.
        """
        try:
            await self.request_reset(store, email)
        except Exception:
            log.exception("a password reset request could not be completed")

    async def request_reset(self, store: Store, email: str) -> None:
        """Send a reset token when the account exists; the caller answers the same either way
        (the API runs this after its answer: :meth:`request_reset_later`)."""
        raw = secrets.token_urlsafe(32)
        now = utc_now()
        expires = now + timedelta(seconds=self.settings.password_reset_ttl_seconds)
        async with store.writing() as conn:
            row = await UserRepository(conn).get_by_email(email.strip().lower())
            if row is None or not row["is_active"] or row["hashed_password"] is None:
                return
            await store.db.set_local(conn, TENANT_SETTING, str(row["id"]))
            await ResetTokenRepository(conn).insert(
                {
                    "id": uuid7(),
                    "user_id": row["id"],
                    "token_hash": hash_token(raw),
                    "expires_at": expires,
                    "created_at": now,
                }
            )
        template = self.settings.password_reset_url
        link = template.replace("{token}", raw) if template else None
        await self.notifier.password_reset(row["email"], raw, link, expires)

    async def confirm_reset(self, store: Store, raw: str, new_password: str) -> None:
        """Use a reset token once: set the password and end every session."""
        check_password_policy(new_password, "new_password")
        hashed = await self.passwords.hash(new_password)
        async with store.writing() as conn:
            repo = ResetTokenRepository(conn)
            user_id = None
            if await _enter_by_token(store, conn, repo.owner, hash_token(raw)) is not None:
                user_id = await repo.consume(hash_token(raw), utc_now())
            if user_id is None:
                raise InvalidInput("invalid, used or expired reset token", field="token")
            await self.set_password(conn, user_id, hashed)

    async def authenticate(self, store: Store, token: str) -> Principal:
        """The user behind a bearer token: ours, or the configured external issuer's.

        Reads in a read transaction; only the first sight of an external user writes.
        """
        if self.external is not None and token_issuer(token) == self.external.issuer:
            claims = await self.external.verify(token)
            async with store.reading() as conn:
                row = await UserRepository(conn).get_by_identity(
                    self.external.issuer, claims["sub"]
                )
            if row is None:
                async with store.writing() as conn:
                    return Principal(await self.provision(conn, claims), None)
            if not row["is_active"]:
                raise InvalidCredentials("invalid or expired token")
            return Principal(UserRead.model_validate(row), None)
        access = self.access.verify(token)
        async with store.reading(access.user_id) as conn:
            active = await RefreshTokenRepository(conn).active_user(
                access.user_id, access.session_id, utc_now()
            )
        if active is None:
            raise InvalidCredentials("invalid or expired token")
        return Principal(UserRead.model_validate(active), access.session_id)

    async def external_login(
        self, store: Store, id_token: str, user_agent: str | None
    ) -> TokenPair:
        """Exchange an external issuer's token for a convstore session."""
        if self.external is None or token_issuer(id_token) != self.external.issuer:
            raise InvalidCredentials("invalid or expired token")
        claims = await self.external.verify(id_token)
        async with store.writing() as conn:
            user = await self.provision(conn, claims)
            await store.db.set_local(conn, TENANT_SETTING, str(user.id))
            return await self.start_session(conn, user.id, user_agent)

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
        return UserRead.model_validate(row)

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
