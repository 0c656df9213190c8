"""Every query on API keys: a user's own keys, and the one lookup by a key's hash."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, delete, func, insert, or_, select, tuple_, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.apikeys.models import ApiKey
from convstore.users.models import User

api_keys = cast(Table, ApiKey.__table__)
users = cast(Table, User.__table__)
KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.prefix,
    api_keys.c.created_at,
    api_keys.c.expires_at,
    api_keys.c.last_used_at,
)
"""What is ever read back: everything but ``user_id`` and ``key_hash``."""


class ApiKeyRepository:
    """The API keys of one user."""

    def __init__(self, conn: AsyncConnection, user_id: uuid.UUID) -> None:
        self.conn = conn
        self.user_id = user_id

    def _mine(self, *conditions: Any) -> Any:
        return and_(api_keys.c.user_id == self.user_id, *conditions)

    async def lock_owner(self) -> bool:
        """Lock the user's row until the transaction ends (PostgreSQL; SQLite's writes are
        serialised already), so two concurrent creations count each other's key. False when
        the user is gone."""
        stmt = select(users.c.id).where(users.c.id == self.user_id).with_for_update()
        return (await self.conn.execute(stmt)).scalar_one_or_none() is not None

    async def count(self) -> int:
        stmt = select(func.count()).select_from(api_keys).where(self._mine())
        return int((await self.conn.execute(stmt)).scalar_one())

    async def insert(self, values: dict[str, Any]) -> RowMapping:
        stmt = insert(api_keys).values(**values, user_id=self.user_id).returning(*KEY_COLUMNS)
        return (await self.conn.execute(stmt)).mappings().one()

    async def list(
        self, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[RowMapping]:
        """Oldest first, by (created_at, id)."""
        t = api_keys.c
        stmt = select(*KEY_COLUMNS).where(self._mine())
        if after is not None:
            stmt = stmt.where(tuple_(t.created_at, t.id) > tuple_(*after))
        stmt = stmt.order_by(t.created_at, t.id).limit(limit)
        return list((await self.conn.execute(stmt)).mappings())

    async def get(self, key_id: uuid.UUID) -> RowMapping | None:
        stmt = select(*KEY_COLUMNS).where(self._mine(api_keys.c.id == key_id))
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def delete(self, key_id: uuid.UUID) -> bool:
        stmt = delete(api_keys).where(self._mine(api_keys.c.id == key_id))
        return (await self.conn.execute(stmt)).rowcount == 1

    async def touch(self, key_id: uuid.UUID, now: datetime, stale_before: datetime) -> bool:
        """Set ``last_used_at`` unless it was set at or after ``stale_before``: one conditional
        statement, so concurrent requests write it once."""
        t = api_keys.c
        stmt = (
            update(api_keys)
            .where(
                self._mine(
                    t.id == key_id, or_(t.last_used_at.is_(None), t.last_used_at < stale_before)
                )
            )
            .values(last_used_at=now)
        )
        return (await self.conn.execute(stmt)).rowcount == 1


async def find_live(conn: AsyncConnection, key_hash: str, now: datetime) -> RowMapping | None:
    """The key with this hash, unexpired, with its user when active: one statement.

    Not bound to a user: holding the key is the right to its row (under row-level security the
    transaction names the hash first, which opens that one row). The user's columns come as
    they are; the key's as ``key_id`` and ``key_last_used_at``.
    """
    k = api_keys.c
    stmt = (
        select(*users.c, k.id.label("key_id"), k.last_used_at.label("key_last_used_at"))
        .select_from(api_keys.join(users, users.c.id == k.user_id))
        .where(
            k.key_hash == key_hash,
            or_(k.expires_at.is_(None), k.expires_at > now),
            users.c.is_active.is_(True),
        )
    )
    row: RowMapping | None = (await conn.execute(stmt)).mappings().one_or_none()
    return row
