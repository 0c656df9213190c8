"""Every query on refresh tokens, password reset tokens and idempotency keys."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.auth.models import IdempotencyKey, PasswordResetToken, RefreshToken
from convstore.db import DriverStatement
from convstore.users.models import User

refresh_tokens = cast(Table, RefreshToken.__table__)
reset_tokens = cast(Table, PasswordResetToken.__table__)
idempotency_keys = cast(Table, IdempotencyKey.__table__)
users = cast(Table, User.__table__)


class RefreshTokenRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def insert(self, values: dict[str, Any]) -> None:
        await self.conn.execute(insert(refresh_tokens).values(**values))

    async def rotate(
        self, token_hash: str, *, now: datetime, child_id: uuid.UUID
    ) -> RowMapping | None:
        """Revoke a live, unexpired token and point it at its child, in one statement: of two
        concurrent rotations of the same token exactly one gets the row."""
        t = refresh_tokens.c
        stmt = (
            update(refresh_tokens)
            .where(t.token_hash == token_hash, t.revoked_at.is_(None), t.expires_at > now)
            .values(revoked_at=now, replaced_by=child_id)
            .returning(t.id, t.user_id, t.family_id, t.user_agent)
        )
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def owner(self, token_hash: str) -> uuid.UUID | None:
        """The user of the token with this hash (the first step of a refresh)."""
        stmt = select(refresh_tokens.c.user_id).where(refresh_tokens.c.token_hash == token_hash)
        user_id: uuid.UUID | None = (await self.conn.execute(stmt)).scalar_one_or_none()
        return user_id

    async def get_by_hash(self, token_hash: str) -> RowMapping | None:
        stmt = select(*refresh_tokens.c).where(refresh_tokens.c.token_hash == token_hash)
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def get(self, token_id: uuid.UUID) -> RowMapping | None:
        stmt = select(*refresh_tokens.c).where(refresh_tokens.c.id == token_id)
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def family_started(self, family_id: uuid.UUID) -> datetime | None:
        stmt = select(func.min(refresh_tokens.c.created_at)).where(
            refresh_tokens.c.family_id == family_id
        )
        started: datetime | None = (await self.conn.execute(stmt)).scalar_one_or_none()
        return started

    async def revoke_family(self, family_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> int:
        t = refresh_tokens.c
        stmt = (
            update(refresh_tokens)
            .where(t.family_id == family_id, t.user_id == user_id, t.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return (await self.conn.execute(stmt)).rowcount

    async def revoke_user(self, user_id: uuid.UUID, now: datetime) -> int:
        t = refresh_tokens.c
        stmt = (
            update(refresh_tokens)
            .where(t.user_id == user_id, t.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return (await self.conn.execute(stmt)).rowcount

    async def active_user(
        self, user_id: uuid.UUID, session_id: uuid.UUID | None, now: datetime
    ) -> Mapping[str, Any] | None:
        """The user behind an access token, if active and (with a session) still signed in.

        Runs on every authenticated request: one statement, built once, on the driver.
        """
        params: dict[str, Any] = {"user_id": user_id}
        if session_id is not None:
            params.update(session_id=session_id, now=now)
        rows = await _active_user_query(session_id is not None).fetch(self.conn, params)
        return rows[0] if rows else None


@cache
def _active_user_query(with_session: bool) -> DriverStatement:
    u, t = users.c, refresh_tokens.c
    user_id = bindparam("user_id", type_=u.id.type)
    stmt = select(*users.c).where(u.id == user_id, u.is_active.is_(True))
    if with_session:
        stmt = stmt.where(
            exists().where(
                t.family_id == bindparam("session_id", type_=t.family_id.type),
                t.user_id == user_id,
                t.revoked_at.is_(None),
                t.expires_at > bindparam("now", type_=t.expires_at.type),
            )
        )
    return DriverStatement(stmt)


class ResetTokenRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def insert(self, values: dict[str, Any]) -> None:
        await self.conn.execute(insert(reset_tokens).values(**values))

    async def owner(self, token_hash: str) -> uuid.UUID | None:
        """The user of the reset token with this hash (used or not)."""
        stmt = select(reset_tokens.c.user_id).where(reset_tokens.c.token_hash == token_hash)
        user_id: uuid.UUID | None = (await self.conn.execute(stmt)).scalar_one_or_none()
        return user_id

    async def consume(self, token_hash: str, now: datetime) -> uuid.UUID | None:
        """Mark a live token used and return its user: a token works once."""
        t = reset_tokens.c
        stmt = (
            update(reset_tokens)
            .where(t.token_hash == token_hash, t.used_at.is_(None), t.expires_at > now)
            .values(used_at=now)
            .returning(t.user_id)
        )
        user_id: uuid.UUID | None = (await self.conn.execute(stmt)).scalar_one_or_none()
        return user_id

    async def expire_for_user(self, user_id: uuid.UUID, now: datetime) -> None:
        t = reset_tokens.c
        await self.conn.execute(
            update(reset_tokens)
            .where(t.user_id == user_id, t.used_at.is_(None))
            .values(used_at=now)
        )


class IdempotencyRepository:
    """Idempotency keys of one user."""

    def __init__(self, conn: AsyncConnection, user_id: uuid.UUID) -> None:
        self.conn = conn
        self.user_id = user_id

    def _mine(self, key: str) -> Any:
        return and_(idempotency_keys.c.user_id == self.user_id, idempotency_keys.c.key == key)

    async def claim(self, key: str, request_hash: str, now: datetime) -> bool:
        """Insert the key unless this user already has it; True when this call claimed it.

        On PostgreSQL a concurrent claimer of the same key waits here until the first
        transaction ends, then finds the stored response (or claims the key if it rolled back).
        """
        values = {
            "id": uuid.uuid4(),
            "user_id": self.user_id,
            "key": key,
            "request_hash": request_hash,
            "created_at": now,
        }
        dialect = self.conn.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
        stmt = (
            upsert(idempotency_keys)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["user_id", "key"])
        )
        return (await self.conn.execute(stmt)).rowcount == 1

    async def get(self, key: str) -> RowMapping | None:
        stmt = select(*idempotency_keys.c).where(self._mine(key))
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def record(self, key: str, status_code: int, body: str, location: str | None) -> None:
        await self.conn.execute(
            update(idempotency_keys)
            .where(self._mine(key))
            .values(status_code=status_code, response_body=body, location=location)
        )

    async def forget(self, key: str) -> None:
        await self.conn.execute(delete(idempotency_keys).where(self._mine(key)))

    async def delete_older_than(self, cutoff: datetime) -> int:
        """Drop this user's expired keys (called now and then, not on every request)."""
        t = idempotency_keys.c
        stmt = delete(idempotency_keys).where(t.user_id == self.user_id, t.created_at < cutoff)
        return (await self.conn.execute(stmt)).rowcount
