"""Stores the comparison creates besides convstore's dataset, and the dataset read back.

- :func:`read_back` streams convstore's loaded dataset conversation by conversation (messages
  in ``seq`` order, in chunks: memory does not grow with N). Every peer is filled with exactly
  these conversations, under the same ids, so operation ``i`` of every implementation targets
  the same conversation.
- :func:`scratch` makes an empty convstore schema (migrations, and the dataset's users, whom
  conversations reference) for the bulk loads of convstore and the raw bounds.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from bench.fixture import pg_plain, sqlite_file
from bench.impl import Context, Conv, Conversation, Message
from bench.load import create_pg_database, drop_pg_database

BATCH = 100
"""Messages per call when a conversation is bulk-loaded (the long one takes several)."""

_SKIP_TITLES = ("W4 bulk%", "W5 concurrent%")
"""Conversations the workloads of an earlier run (``--reuse``) created: not dataset rows."""

PG_READ_BACK = """
SELECT m.conversation_id, m.user_id, m.role, m.content, m.tool_calls::text AS tool_calls,
       m.tool_call_id
FROM messages m JOIN conversations c ON c.id = m.conversation_id
WHERE c.title IS NULL OR (c.title NOT LIKE $1 AND c.title NOT LIKE $2)
ORDER BY c.created_at, c.id, m.seq"""
SQ_READ_BACK = (
    PG_READ_BACK.replace("$1", "?").replace("$2", "?").replace("::text AS tool_calls", "")
)


def _message(role: str, content: str, tool_calls: str | None, tool_call_id: str | None) -> Message:
    return Message(role, content, json.loads(tool_calls) if tool_calls else None, tool_call_id)


async def read_back(backend: str, url: str) -> AsyncIterator[Conversation]:
    """The dataset's conversations in creation order."""
    current: Conversation | None = None
    async for cid, uid, message in _rows(backend, url):
        if current is None or current.conv.id != cid:
            if current is not None:
                yield current
            current = Conversation(Conv(cid, uid), [])
        current.messages.append(message)
    if current is not None:
        yield current


async def _rows(backend: str, url: str) -> AsyncIterator[tuple[uuid.UUID, uuid.UUID, Message]]:
    if backend == "postgresql":
        conn = await asyncpg.connect(pg_plain(url))
        try:
            async with conn.transaction():
                async for r in conn.cursor(PG_READ_BACK, *_SKIP_TITLES, prefetch=5_000):
                    yield (
                        r["conversation_id"],
                        r["user_id"],
                        _message(r["role"], r["content"], r["tool_calls"], r["tool_call_id"]),
                    )
        finally:
            await conn.close()
        return
    db = sqlite3.connect(sqlite_file(url))
    try:
        cursor = db.execute(SQ_READ_BACK, _SKIP_TITLES)
        while rows := cursor.fetchmany(5_000):
            for cid, uid, role, content, tool_calls, tool_call_id in rows:
                yield (
                    uuid.UUID(cid),
                    uuid.UUID(uid),
                    _message(role, content, tool_calls, tool_call_id),
                )
            await asyncio.sleep(0)
    finally:
        db.close()


def chunks(messages: list[Message], size: int = BATCH) -> list[list[Message]]:
    return [messages[i : i + size] for i in range(0, len(messages), size)]


async def scratch(ctx: Context, slug: str) -> str:
    """An empty convstore schema named after ``slug``, holding the dataset's users; its URL."""
    from bench.library import bench_settings
    from bench.load import prepare

    if ctx.backend == "postgresql":
        url = await create_pg_database(pg_plain(ctx.pg_admin_url), ctx.pg_database(slug))
    else:
        path = ctx.sqlite_path(slug)
        remove_sqlite(path)
        url = f"sqlite:///{path}"
    await prepare(url, bench_settings())
    await _copy_users(ctx, url)
    return url


async def _copy_users(ctx: Context, url: str) -> None:
    if ctx.backend == "postgresql":
        src = await asyncpg.connect(pg_plain(ctx.dataset_url))
        dst = await asyncpg.connect(pg_plain(url))
        try:
            rows = await src.fetch("SELECT * FROM users")
            if rows:
                columns = list(rows[0].keys())
                await dst.copy_records_to_table(
                    "users", records=[tuple(r) for r in rows], columns=columns
                )
        finally:
            await src.close()
            await dst.close()
        return
    db = sqlite3.connect(sqlite_file(url))
    try:
        db.execute("ATTACH DATABASE ? AS dataset", (str(sqlite_file(ctx.dataset_url)),))
        db.execute("INSERT INTO users SELECT * FROM dataset.users")
        db.commit()
        db.execute("DETACH DATABASE dataset")
    finally:
        db.close()


async def drop_scratch(ctx: Context, url: str) -> None:
    if ctx.backend == "postgresql":
        await drop_pg_database(pg_plain(ctx.pg_admin_url), url.rsplit("/", 1)[1])
    else:
        remove_sqlite(sqlite_file(url))


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def pg_database(ctx: Context, slug: str) -> str:
    """A new empty PostgreSQL database for a peer (``postgresql://`` URL)."""
    return await create_pg_database(pg_plain(ctx.pg_admin_url), ctx.pg_database(slug))


async def drop_pg(ctx: Context, slug: str) -> None:
    await drop_pg_database(pg_plain(ctx.pg_admin_url), ctx.pg_database(slug))
