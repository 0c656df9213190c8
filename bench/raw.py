"""The physical bound: the same driver convstore uses, prepared statements, one round trip
per operation, writing and reading exactly the rows the library does.

PostgreSQL: asyncpg, each operation one prepared statement (an append is one CTE that bumps
``messages_count`` and inserts, in autocommit — one implicit transaction, durable at commit).
SQLite: the ``sqlite3`` driver that aiosqlite wraps, each operation one function run on the
connection's own thread (one thread hop, the SQLite equivalent of a round trip), with the same
pragmas as the library (WAL, ``synchronous=FULL``, foreign keys, ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from bench.fixture import USER_TEXT, W6_TAG, Fixture, Params, check_w5, pg_plain, sqlite_file
from bench.library import batch_items
from bench.stats import Seat, timed, timed_concurrent
from convstore.conversations.service import title_from_message
from convstore.kit.types import uuid7

T = TypeVar("T")

MESSAGE_COLS = (
    "id, conversation_id, seq, role, content, status, tool_calls, tool_results, tool_call_id, "
    "attributes, parent_id, usage, created_at, updated_at"
)
CONVERSATION_COLS = (
    "id, title, attributes, messages_count, last_message_at, deleted_at, created_at, updated_at"
)
TASK_COLS = (
    "id, title, description, completed, completed_at, priority, tags, due_at, created_at, "
    "updated_at"
)
TITLE = title_from_message(USER_TEXT)

PG_APPEND = """
WITH c AS (
    UPDATE conversations SET messages_count = messages_count + 1, last_message_at = $3,
        updated_at = $3, title = COALESCE(title, $6)
    WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL
    RETURNING messages_count)
INSERT INTO messages (id, conversation_id, user_id, seq, role, content, status, attributes,
    created_at, updated_at)
SELECT $4, $1, $2, c.messages_count, 'user', $5, 'sent', $7::jsonb, $3, $3 FROM c
RETURNING seq"""
PG_APPEND_MANY = """
WITH c AS (
    UPDATE conversations SET messages_count = messages_count + $3, last_message_at = $4,
        updated_at = $4, title = COALESCE(title, $8)
    WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL
    RETURNING messages_count)
INSERT INTO messages (id, conversation_id, user_id, seq, role, content, status, attributes,
    created_at, updated_at)
SELECT m.id, $1, $2, c.messages_count - $3 + m.ord::int, m.role, m.content,
    CASE WHEN m.role = 'user' THEN 'sent' ELSE 'complete' END, '{}'::jsonb, $4, $4
FROM c, unnest($5::uuid[], $6::text[], $7::text[]) WITH ORDINALITY AS m(id, role, content, ord)"""
PG_HISTORY = f"""
SELECT {MESSAGE_COLS} FROM messages
WHERE conversation_id = $1 AND user_id = $2 AND deleted_at IS NULL
  AND EXISTS (SELECT 1 FROM conversations
              WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL)
ORDER BY seq DESC LIMIT 51"""
PG_RECENT = f"""
SELECT {CONVERSATION_COLS} FROM conversations
WHERE user_id = $1 AND deleted_at IS NULL
ORDER BY updated_at DESC, id DESC LIMIT 21"""
PG_TASKS = f"""
SELECT {TASK_COLS} FROM tasks
WHERE user_id = $1 AND completed = false AND tags @> $2::jsonb
ORDER BY created_at, id LIMIT 21"""
PG_NEW_CONVERSATION = """
INSERT INTO conversations (id, user_id, title, attributes, messages_count, created_at, updated_at)
VALUES ($1, $2, $3, '{}'::jsonb, 0, $4, $4)"""


def now() -> datetime:
    return datetime.now(UTC)


async def run(fx: Fixture, p: Params, seat: Seat) -> dict[str, Any]:
    """Every workload on the raw driver; latency workloads take turns with the other
    implementations at ``seat``, W4 and W5 run alone."""
    if fx.backend == "postgresql":
        return await _run_pg(fx, p, seat)
    return await _run_sqlite(fx, p, seat)


async def _run_pg(fx: Fixture, p: Params, seat: Seat) -> dict[str, Any]:
    out: dict[str, Any] = {}
    conn = await asyncpg.connect(pg_plain(fx.url))
    try:
        append = await conn.prepare(PG_APPEND)
        append_many = await conn.prepare(PG_APPEND_MANY)
        history = await conn.prepare(PG_HISTORY)
        recent = await conn.prepare(PG_RECENT)
        tasks = await conn.prepare(PG_TASKS)
        heavy = fx.heavy_user
        tag = json.dumps([W6_TAG])

        async def w1(_: int) -> None:
            cid, uid = fx.pick()
            at = now()
            await append.fetchval(cid, uid, at, uuid7(), USER_TEXT, TITLE, "{}")

        async def w2(_: int) -> None:
            cid, uid = fx.pick()
            await history.fetch(cid, uid)

        async def w3(_: int) -> None:
            await recent.fetch(heavy)

        async def w6(_: int) -> None:
            await tasks.fetch(heavy, tag)

        out["W1"] = (await seat.timed(w1, p.writes, warmup=p.warmup)).summary()
        out["W2"] = (await seat.timed(w2, p.reads, warmup=p.warmup)).summary()
        out["W3"] = (await seat.timed(w3, p.reads, warmup=p.warmup)).summary()
        out["W6"] = (await seat.timed(w6, p.reads, warmup=p.warmup)).summary()
        await seat.alone()

        bulk = uuid7()
        await conn.execute(PG_NEW_CONVERSATION, bulk, fx.writer, "W4 bulk", now())
        items = batch_items(p.batch_size)
        roles = [i["role"] for i in items]
        contents = [i["content"] for i in items]

        async def w4(_: int) -> None:
            ids = [uuid7() for _ in items]
            await append_many.fetch(bulk, fx.writer, len(items), now(), ids, roles, contents, None)

        out["W4"] = (
            await timed(w4, p.batch_total // p.batch_size, warmup=0, items_per_op=p.batch_size)
        ).summary()

        shared = uuid7()
        await conn.execute(PG_NEW_CONVERSATION, shared, fx.writer, "W5 concurrent", now())
    finally:
        await conn.close()

    conns = [await asyncpg.connect(pg_plain(fx.url)) for _ in range(p.writers)]
    try:
        stmts = [await c.prepare(PG_APPEND) for c in conns]

        async def w5(worker: int, i: int) -> None:
            attrs = json.dumps({"w": worker, "n": i})
            await stmts[worker].fetchval(shared, fx.writer, now(), uuid7(), USER_TEXT, TITLE, attrs)

        out["W5"] = (await timed_concurrent(w5, p.writers, p.per_writer)).summary()
    finally:
        for c in conns:
            await c.close()
    out["W5"]["check"] = await check_w5(fx.backend, fx.url, shared, p.writers, p.per_writer)
    return out


# --- SQLite -------------------------------------------------------------------------------

SQ_BUMP = """
UPDATE conversations SET messages_count = messages_count + ?, last_message_at = ?,
    updated_at = ?, title = COALESCE(title, ?)
WHERE id = ? AND user_id = ? AND deleted_at IS NULL
RETURNING messages_count"""
SQ_INSERT = """
INSERT INTO messages (id, conversation_id, user_id, seq, role, content, status, attributes,
    created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
SQ_HISTORY = f"""
SELECT {MESSAGE_COLS} FROM messages
WHERE conversation_id = ? AND user_id = ? AND deleted_at IS NULL
  AND EXISTS (SELECT 1 FROM conversations
              WHERE id = ? AND user_id = ? AND deleted_at IS NULL)
ORDER BY seq DESC LIMIT 51"""
SQ_RECENT = f"""
SELECT {CONVERSATION_COLS} FROM conversations
WHERE user_id = ? AND deleted_at IS NULL
ORDER BY updated_at DESC, id DESC LIMIT 21"""
SQ_TASKS = f"""
SELECT {TASK_COLS} FROM tasks
WHERE user_id = ? AND completed = 0
  AND EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE value = ?)
ORDER BY created_at, id LIMIT 21"""
SQ_NEW_CONVERSATION = """
INSERT INTO conversations (id, user_id, title, attributes, messages_count, created_at, updated_at)
VALUES (?, ?, ?, '{}', 0, ?, ?)"""


def _ts(at: datetime) -> str:
    return at.replace(tzinfo=None).isoformat(" ", timespec="microseconds")


class SqliteConn:
    """A sqlite3 connection with its own thread: each call is one hop to that thread."""

    def __init__(self, path: str) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "foreign_keys = ON",
            "busy_timeout = 5000",
            "journal_mode = WAL",
            "synchronous = FULL",
        ):
            self.db.execute(f"PRAGMA {pragma}")

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, self.db)

    def close(self) -> None:
        self.pool.shutdown()
        self.db.close()


def _append(
    db: sqlite3.Connection, cid: str, uid: str, rows: list[tuple[str, str, str]], attrs: str
) -> int:
    """BEGIN IMMEDIATE; bump the counter; insert; COMMIT — as the library does."""
    at = _ts(now())
    db.execute("BEGIN IMMEDIATE")
    try:
        (last,) = db.execute(SQ_BUMP, (len(rows), at, at, TITLE, cid, uid)).fetchone()
        first = last - len(rows) + 1
        db.executemany(
            SQ_INSERT,
            [
                (
                    mid,
                    cid,
                    uid,
                    first + k,
                    role,
                    content,
                    "sent" if role == "user" else "complete",
                    attrs,
                    at,
                    at,
                )
                for k, (mid, role, content) in enumerate(rows)
            ],
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return int(last)


async def _run_sqlite(fx: Fixture, p: Params, seat: Seat) -> dict[str, Any]:
    out: dict[str, Any] = {}
    path = str(sqlite_file(fx.url))
    conn = SqliteConn(path)
    lock = asyncio.Lock()  # one writer at a time, as the library's write lock
    heavy = fx.heavy_user.hex
    writer = fx.writer.hex
    try:

        async def w1(_: int) -> None:
            cid, uid = fx.pick()
            row = [(uuid7().hex, "user", USER_TEXT)]
            async with lock:
                await conn.call(lambda db: _append(db, cid.hex, uid.hex, row, "{}"))

        async def w2(_: int) -> None:
            cid, uid = fx.pick()
            c, u = cid.hex, uid.hex
            await conn.call(lambda db: db.execute(SQ_HISTORY, (c, u, c, u)).fetchall())

        async def w3(_: int) -> None:
            await conn.call(lambda db: db.execute(SQ_RECENT, (heavy,)).fetchall())

        async def w6(_: int) -> None:
            await conn.call(lambda db: db.execute(SQ_TASKS, (heavy, W6_TAG)).fetchall())

        out["W1"] = (await seat.timed(w1, p.writes, warmup=p.warmup)).summary()
        out["W2"] = (await seat.timed(w2, p.reads, warmup=p.warmup)).summary()
        out["W3"] = (await seat.timed(w3, p.reads, warmup=p.warmup)).summary()
        out["W6"] = (await seat.timed(w6, p.reads, warmup=p.warmup)).summary()
        await seat.alone()

        bulk, shared = uuid7().hex, uuid7().hex
        at = _ts(now())
        for cid, title in ((bulk, "W4 bulk"), (shared, "W5 concurrent")):
            await conn.call(
                lambda db, c=cid, t=title: db.execute(  # type: ignore[misc]
                    SQ_NEW_CONVERSATION, (c, writer, t, at, at)
                )
            )
        items = batch_items(p.batch_size)

        async def w4(_: int) -> None:
            rows = [(uuid7().hex, i["role"], i["content"]) for i in items]
            async with lock:
                await conn.call(lambda db: _append_batch(db, bulk, writer, rows))

        out["W4"] = (
            await timed(w4, p.batch_total // p.batch_size, warmup=0, items_per_op=p.batch_size)
        ).summary()
    finally:
        conn.close()

    writers = [SqliteConn(path) for _ in range(p.writers)]
    try:

        async def w5(worker: int, i: int) -> None:
            row = [(uuid7().hex, "user", USER_TEXT)]
            attrs = json.dumps({"w": worker, "n": i})
            async with lock:
                await writers[worker].call(lambda db: _append(db, shared, writer, row, attrs))

        out["W5"] = (await timed_concurrent(w5, p.writers, p.per_writer)).summary()
    finally:
        for w in writers:
            w.close()
    out["W5"]["check"] = await check_w5(
        fx.backend, fx.url, uuid.UUID(shared), p.writers, p.per_writer
    )
    return out


def _append_batch(
    db: sqlite3.Connection, cid: str, uid: str, rows: list[tuple[str, str, str]]
) -> int:
    """W4: one transaction per batch."""
    return _append(db, cid, uid, rows, "{}")


async def warm(fx: Fixture, p: Params) -> None:
    """Read the last messages of every sampled conversation once (a warm cache for all)."""
    if fx.backend == "postgresql":
        conn = await asyncpg.connect(pg_plain(fx.url))
        try:
            for cid, uid in fx.conversations[: p.reads]:
                await conn.fetch(PG_HISTORY, cid, uid)
        finally:
            await conn.close()
        return
    db = SqliteConn(str(sqlite_file(fx.url)))
    try:
        pairs = [(c.hex, u.hex) for c, u in fx.conversations[: p.reads]]
        await db.call(lambda d: [d.execute(SQ_HISTORY, (c, u, c, u)).fetchall() for c, u in pairs])
    finally:
        db.close()
