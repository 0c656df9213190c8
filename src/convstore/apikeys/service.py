"""The rules for API keys: how a secret is made and stored, the per-user cap, expiry, and how
a presented key finds its user.

A key is ``csk_`` followed by 43 URL-safe characters (256 random bits, as
``secrets.token_urlsafe(32)`` makes them). Only its SHA-256 is stored: a fast hash is right for
a 256-bit random secret, which no amount of guessing can find (slow hashes are for passwords).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.apikeys.repository import ApiKeyRepository, find_live
from convstore.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from convstore.errors import Conflict, InvalidInput, NotFound
from convstore.kit.pagination import Page, decode_keyset, encode_keyset
from convstore.kit.types import utc_now, uuid7
from convstore.users.schemas import UserRead
from convstore.users.service import user_read

KEY_PREFIX = "csk_"
"""Every API key starts with this; a bearer token that does is looked up as a key."""
PREFIX_CHARS = 12
"""How much of a key lists show (``csk_`` and 8 characters of the secret)."""
TOUCH_EVERY = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per key."""
LIST_SCOPE = "api-keys"


def new_secret() -> str:
    """A fresh key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def derived_secret(server_secret: bytes, user_id: uuid.UUID, key_id: uuid.UUID) -> str:
    """The key of ``key_id`` when its creation carried an ``Idempotency-Key``: an HMAC under
    the server secret, of the same shape as :func:`new_secret`, so a replayed creation can
    show the key again without the key ever being stored."""
    message = f"api-key:{user_id}:{key_id}".encode()
    digest = hmac.new(server_secret, message, hashlib.sha256).digest()
    return KEY_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hash_key(raw: str) -> str:
    """The stored form of a key (SHA-256, hex)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def looks_like_key(token: str) -> bool:
    """Whether a bearer token is an API key (rather than an access token)."""
    return token.startswith(KEY_PREFIX)


def _not_found() -> NotFound:
    return NotFound("API key not found")


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """The user a presented key signs in, and whether its ``last_used_at`` is due."""

    user: UserRead
    key_id: uuid.UUID
    touch_due: bool


class ApiKeyService:
    async def create(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        data: ApiKeyCreate,
        *,
        max_keys: int,
        key_id: uuid.UUID | None = None,
        secret: str | None = None,
    ) -> ApiKeyCreated:
        """A new key of ``user_id`` (``secret``: default a fresh one). The answer is the only
        place the secret appears.

        Raises:
            InvalidInput: ``expires_at`` is not in the future.
            Conflict: the user has ``max_keys`` keys already.
            NotFound: the user is gone.
        """
        now = utc_now()
        if data.expires_at is not None and data.expires_at <= now:
            raise InvalidInput("must be in the future", field="expires_at")
        raw = secret or new_secret()
        repo = ApiKeyRepository(conn, user_id)
        if not await repo.lock_owner():
            raise NotFound("user not found")
        if await repo.count() >= max_keys:
            raise Conflict(f"at most {max_keys} API keys per user; revoke one first")
        row = await repo.insert(
            {
                "id": key_id or uuid7(),
                "name": data.name,
                "prefix": raw[:PREFIX_CHARS],
                "key_hash": hash_key(raw),
                "created_at": now,
                "expires_at": data.expires_at,
            }
        )
        return ApiKeyCreated.model_validate({**row, "key": raw})

    async def list(
        self, conn: AsyncConnection, user_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> Page[ApiKeyRead]:
        """The user's keys, oldest first, keyset-paged; never a secret."""
        after = decode_keyset(cursor, LIST_SCOPE) if cursor is not None else None
        rows = await ApiKeyRepository(conn, user_id).list(limit=limit + 1, after=after)
        items = [ApiKeyRead.model_validate(r) for r in rows[:limit]]
        has_more = len(rows) > limit
        next_cursor = None
        if has_more:
            next_cursor = encode_keyset(LIST_SCOPE, items[-1].created_at, items[-1].id)
        return Page(items=items, next_cursor=next_cursor, has_more=has_more)

    async def get(self, conn: AsyncConnection, user_id: uuid.UUID, key_id: uuid.UUID) -> ApiKeyRead:
        """One of the user's keys (never the secret).

        Raises:
            NotFound: no such key of this user (another user's is the same case).
        """
        row = await ApiKeyRepository(conn, user_id).get(key_id)
        if row is None:
            raise _not_found()
        return ApiKeyRead.model_validate(row)

    async def revoke(self, conn: AsyncConnection, user_id: uuid.UUID, key_id: uuid.UUID) -> None:
        """Delete the key: the next request made with it is refused.

        Raises:
            NotFound: no such key of this user (another user's is the same case).
        """
        if not await ApiKeyRepository(conn, user_id).delete(key_id):
            raise _not_found()

    async def owner(
        self, conn: AsyncConnection, raw: str, now: datetime | None = None
    ) -> KeyOwner | None:
        """The active user of the live key ``raw``, or None (unknown, revoked, expired, or its
        account is disabled or gone). Under row-level security the transaction must name the
        key's hash first (``Database.act_as(token_hash=hash_key(raw))``)."""
        now = now or utc_now()
        row = await find_live(conn, hash_key(raw), now)
        if row is None:
            return None
        last = row["key_last_used_at"]
        return KeyOwner(
            user=user_read(row),
            key_id=row["key_id"],
            touch_due=last is None or last < now - TOUCH_EVERY,
        )

    async def touch(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        key_id: uuid.UUID,
        now: datetime | None = None,
    ) -> bool:
        """Record a use of the key, unless one was recorded within :data:`TOUCH_EVERY`."""
        now = now or utc_now()
        return await ApiKeyRepository(conn, user_id).touch(key_id, now, now - TOUCH_EVERY)


api_key = ApiKeyService()
