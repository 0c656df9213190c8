"""Every query on users. Users are the root of ownership: these are looked up by id or email."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.users.models import User

users = cast(Table, User.__table__)
USER_COLUMNS = tuple(users.c)


class UserRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def get(self, user_id: uuid.UUID) -> RowMapping | None:
        stmt = select(*USER_COLUMNS).where(users.c.id == user_id)
        return (await self.conn.execute(stmt)).mappings().one_or_none()

    async def get_by_email(self, email: str) -> RowMapping | None:
        stmt = select(*USER_COLUMNS).where(users.c.email == email)
        return (await self.conn.execute(stmt)).mappings().one_or_none()

    async def get_by_identity(self, provider: str, subject: str) -> RowMapping | None:
        stmt = select(*USER_COLUMNS).where(
            users.c.auth_provider == provider, users.c.auth_subject == subject
        )
        return (await self.conn.execute(stmt)).mappings().one_or_none()

    async def insert(self, values: dict[str, Any]) -> RowMapping:
        stmt = insert(users).values(**values).returning(*USER_COLUMNS)
        return (await self.conn.execute(stmt)).mappings().one()

    async def update(self, user_id: uuid.UUID, values: dict[str, Any]) -> RowMapping | None:
        stmt = update(users).where(users.c.id == user_id).values(**values).returning(*USER_COLUMNS)
        return (await self.conn.execute(stmt)).mappings().one_or_none()

    async def list_page(
        self,
        *,
        limit: int,
        after: uuid.UUID | None,
        email_prefix: str | None = None,
        is_active: bool | None = None,
    ) -> list[RowMapping]:
        """Up to ``limit`` users in id order (creation order: ids are UUIDv7), after ``after``,
        optionally only those whose email starts with ``email_prefix`` (lower case, matched
        literally: ``%`` and ``_`` are not wildcards) or whose ``is_active`` is the one given.

        Operator-only: the users table is the root of ownership and carries no row-level
        policy; only the admin API and the operator commands list it.
        """
        stmt = select(*USER_COLUMNS).order_by(users.c.id).limit(limit)
        if after is not None:
            stmt = stmt.where(users.c.id > after)
        if email_prefix:
            stmt = stmt.where(users.c.email.startswith(email_prefix, autoescape=True))
        if is_active is not None:
            stmt = stmt.where(users.c.is_active.is_(is_active))
        return list((await self.conn.execute(stmt)).mappings())

    async def delete(self, user_id: uuid.UUID) -> bool:
        return (await self.conn.execute(delete(users).where(users.c.id == user_id))).rowcount == 1
