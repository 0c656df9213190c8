"""The rules for users: unique lower-case emails, hashed passwords, cascading deletion."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.auth.repository import RefreshTokenRepository
from convstore.errors import Conflict, InvalidInput, NotFound
from convstore.kit.pagination import Page, decode_cursor, encode_cursor
from convstore.kit.schemas import trusted
from convstore.kit.types import utc_now, uuid7
from convstore.users.repository import UserRepository
from convstore.users.schemas import UserCreate, UserFilter, UserRead, UserUpdate


def user_read(row: Mapping[Any, Any]) -> UserRead:
    """The one builder of :class:`UserRead`: from a row convstore wrote itself, without
    validating again (the session check builds one on every request)."""
    return trusted(
        UserRead,
        {
            "id": row["id"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "email": row["email"],
            "name": row["name"],
            "role": row["role"],
            "auth_provider": row["auth_provider"],
            "is_active": row["is_active"],
        },
    )


def _not_found() -> NotFound:
    return NotFound("user not found")


def _decode_id(key: list[Any]) -> uuid.UUID:
    try:
        (last_id,) = key
        return uuid.UUID(last_id)
    except (TypeError, ValueError, AttributeError):
        raise InvalidInput("malformed cursor", field="cursor") from None


class UserService:
    async def create(
        self, conn: AsyncConnection, data: UserCreate, hashed_password: str | None
    ) -> UserRead:
        """Insert a user. The password is hashed by the caller, outside the transaction
        (Argon2 takes tens of milliseconds; no lock should wait for it)."""
        if (data.auth_provider is None) != (data.auth_subject is None):
            raise InvalidInput(
                "give both auth_provider and auth_subject, or neither", field="auth_subject"
            )
        repo = UserRepository(conn)
        if await repo.get_by_email(data.email) is not None:
            raise Conflict("a user with this email already exists")
        now = utc_now()
        values = data.model_dump(exclude={"password"})
        row = await repo.insert(
            {
                "id": uuid7(),
                **values,
                "hashed_password": hashed_password,
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
        return user_read(row)

    async def get(self, conn: AsyncConnection, user_id: uuid.UUID) -> UserRead:
        row = await UserRepository(conn).get(user_id)
        if row is None:
            raise _not_found()
        return user_read(row)

    async def get_by_email(self, conn: AsyncConnection, email: str) -> UserRead:
        row = await UserRepository(conn).get_by_email(email.strip().lower())
        if row is None:
            raise _not_found()
        return user_read(row)

    async def update(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        data: UserUpdate,
        hashed_password: str | None = None,
    ) -> UserRead:
        """Apply the given fields; a new password arrives already hashed."""
        changes = data.model_dump(exclude_unset=True)
        for name in ("email", "password", "role", "is_active"):
            if name in changes and changes[name] is None:
                raise InvalidInput("must not be null", field=name)
        repo = UserRepository(conn)
        if "email" in changes:
            other = await repo.get_by_email(changes["email"])
            if other is not None and other["id"] != user_id:
                raise Conflict("a user with this email already exists")
        values: dict[str, Any] = {k: v for k, v in changes.items() if k != "password"}
        if hashed_password is not None:
            values["hashed_password"] = hashed_password
        if not values:
            return await self.get(conn, user_id)
        row = await repo.update(user_id, {**values, "updated_at": utc_now()})
        if row is None:
            raise _not_found()
        return user_read(row)

    async def list(
        self,
        conn: AsyncConnection,
        *,
        limit: int,
        after: uuid.UUID | None = None,
        filters: UserFilter | None = None,
    ) -> list[UserRead]:
        """A page of every user, oldest first (operators only: the admin API and CLI)."""
        filters = filters or UserFilter()
        rows = await UserRepository(conn).list_page(
            limit=limit, after=after, email_prefix=filters.email_prefix, is_active=filters.is_active
        )
        return [user_read(row) for row in rows]

    async def page(
        self, conn: AsyncConnection, filters: UserFilter, *, limit: int, cursor: str | None
    ) -> Page[UserRead]:
        """Every user matching ``filters``, oldest first, keyset-paged (the admin API).

        A cursor only continues the list it came from: with other filters it is refused.
        """
        digest = hashlib.sha256(filters.model_dump_json().encode()).hexdigest()[:16]
        scope = f"admin-users:{digest}"
        after = _decode_id(decode_cursor(cursor, scope)) if cursor is not None else None
        rows = await self.list(conn, limit=limit + 1, after=after, filters=filters)
        items, has_more = rows[:limit], len(rows) > limit
        next_cursor = encode_cursor(scope, [str(items[-1].id)]) if has_more else None
        return Page(items=items, next_cursor=next_cursor, has_more=has_more)

    async def set_active(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        active: bool,
        *,
        actor_id: uuid.UUID | None = None,
    ) -> UserRead:
        """Enable or disable the account. A disabled user's access tokens and API keys stop
        working at the next request (each one checks ``is_active``) and their refresh tokens
        are revoked, so enabling again does not bring old sessions back (API keys do work
        again). ``conn`` must act as ``user_id`` (the refresh tokens are under row-level
        security).

        Args:
            actor_id: the admin making the change, when it is one (the API); None for the
                operator's command.

        Raises:
            Conflict: an admin disabling their own account (they would lock themselves out).
            NotFound: no such user.
        """
        if not active and actor_id == user_id:
            raise Conflict("you cannot disable your own account")
        row = await UserRepository(conn).update(
            user_id, {"is_active": active, "updated_at": utc_now()}
        )
        if row is None:
            raise _not_found()
        if not active:
            await RefreshTokenRepository(conn).revoke_user(user_id, utc_now())
        return user_read(row)

    async def delete(self, conn: AsyncConnection, user_id: uuid.UUID) -> None:
        """Delete the user and, by foreign-key cascade, everything they own."""
        if not await UserRepository(conn).delete(user_id):
            raise _not_found()


user = UserService()
