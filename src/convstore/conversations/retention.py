"""Retention: conversations soft-deleted longer ago than the retention period are deleted for
good, with their messages (``convstore purge``, and ``convstore serve`` periodically when
``CONVSTORE_PURGE_RETENTION_DAYS`` is set).

The purge goes user by user: :func:`purge_user` runs in a write transaction acting as that
user, so PostgreSQL's row-level security policies apply to it as to any request. The
application role needs no extra privilege and no statement touches two users' rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.conversations import repository
from convstore.conversations.repository import ConversationRepository
from convstore.errors import InvalidInput
from convstore.kit.types import utc_now


def cutoff(days: float, now: datetime | None = None) -> datetime:
    """The instant before which a soft deletion is old enough to purge."""
    if not days >= 0:
        raise InvalidInput("must be zero or more days", field="older_than")
    return (now or utc_now()) - timedelta(days=days)


async def purge_user(conn: AsyncConnection, user_id: uuid.UUID, before: datetime) -> int:
    """Delete for good the user's conversations soft-deleted before ``before``; how many."""
    return await ConversationRepository(conn, user_id).purge_deleted_before(before)


async def try_lock(conn: AsyncConnection) -> bool:
    """PostgreSQL: whether this session now holds the purge lock (one purger at a time)."""
    return await repository.try_purge_lock(conn)


async def unlock(conn: AsyncConnection) -> None:
    await repository.release_purge_lock(conn)
