"""The physical bound: plain drivers doing the same statements on convstore's well-indexed
schema, one round trip per operation, writing and reading exactly the rows the library does,
with nothing around them (no validation, no JSON decoding, no objects).

- PostgreSQL, two drivers measured in the same run: asyncpg (prepared statements) and
  psycopg 3, synchronous (server-side prepared, ``jsonb`` returned as text as asyncpg does).
  An append is one CTE that bumps ``messages_count`` and inserts, in autocommit (one implicit
  transaction, durable at commit). The report's "raw" is, per workload, the faster of the two.
- SQLite: the stdlib ``sqlite3`` driver called synchronously in the caller's thread (no
  thread hop, no event loop: what any Python program reaches), with the library's pragmas
  (WAL, ``synchronous=FULL``, foreign keys) and ``BEGIN IMMEDIATE`` for appends.

Each bulk-loads the dataset into an empty schema of its own: per conversation, the
conversation's row and its messages (100 per statement) in one transaction.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.fixture import USER_TEXT, W6_TAG, check_w5, pg_plain, sqlite_file
from bench.impl import Context, Conv, Conversation, Implementation, Message, Op
from bench.stores import chunks, drop_scratch, scratch
from convstore.conversations.service import title_from_message
from convstore.kit.types import uuid7

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


PG_LOAD_MANY = """
WITH c AS (
    UPDATE conversations SET messages_count = messages_count + $3, last_message_at = $4,
        updated_at = $4, title = COALESCE(title, $8)
    WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL
    RETURNING messages_count)
INSERT INTO messages (id, conversation_id, user_id, seq, role, content, status, tool_calls,
    tool_call_id, attributes, created_at, updated_at)
SELECT m.id, $1, $2, c.messages_count - $3 + m.ord::int, m.role, m.content,
    CASE WHEN m.role = 'user' THEN 'sent' ELSE 'complete' END, m.tool_calls, m.tool_call_id,
    '{}'::jsonb, $4, $4
FROM c, unnest($5::uuid[], $6::text[], $7::text[], $9::jsonb[], $10::text[])
    WITH ORDINALITY AS m(id, role, content, tool_calls, tool_call_id, ord)"""


def now() -> datetime:
    return datetime.now(UTC)


def _first_title(messages: Sequence[Message]) -> str | None:
    return next((title_from_message(m.content) for m in messages if m.role == "user"), None)


def _load_args(conv: Conv, chunk: list[Message], title: str | None) -> tuple[Any, ...]:
    return (
        conv.id,
        conv.user_id,
        len(chunk),
        now(),
        [uuid7() for _ in chunk],
        [m.role for m in chunk],
        [m.content for m in chunk],
        title,
        [json.dumps(m.tool_calls) if m.tool_calls else None for m in chunk],
        [m.tool_call_id for m in chunk],
    )


def _batch_args(conv: Conv, items: list[tuple[str, str]]) -> tuple[Any, ...]:
    return (
        conv.id,
        conv.user_id,
        len(items),
        now(),
        [uuid7() for _ in items],
        [r for r, _ in items],
        [c for _, c in items],
        None,
    )


class RawAsyncpg(Implementation):
    """asyncpg, one connection, every statement prepared."""

    name = "raw asyncpg"
    kind = "raw"
    slug = "raw_asyncpg"
    distributions = ("asyncpg",)
    setup_note = "asyncpg, prepared statements, autocommit"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.conn: asyncpg.Connection | None = None
        self._scratch: str | None = None
        self.heavy_tag = json.dumps([W6_TAG])

    async def setup(self) -> None:
        self._scratch = await scratch(self.ctx, "load_" + self.slug)
        self._load = await asyncpg.connect(pg_plain(self._scratch))
        self._load_stmt = await self._load.prepare(PG_LOAD_MANY)

    async def load_conversation(self, conversation: Conversation) -> None:
        conv, messages = conversation.conv, conversation.messages
        async with self._load.transaction():
            await self._load.execute(PG_NEW_CONVERSATION, conv.id, conv.user_id, None, now())
            title = _first_title(messages)
            for chunk in chunks(messages):
                await self._load_stmt.fetch(*_load_args(conv, chunk, title))

    async def after_load(self) -> None:
        await self._load.close()
        assert self._scratch is not None
        await drop_scratch(self.ctx, self._scratch)
        self._scratch = None

    async def ready(self, convs: Sequence[Conv]) -> None:
        self.conn = conn = await asyncpg.connect(pg_plain(self.ctx.dataset_url))
        self._append = await conn.prepare(PG_APPEND)
        self._append_many = await conn.prepare(PG_APPEND_MANY)
        self._history = await conn.prepare(PG_HISTORY)
        self._recent = await conn.prepare(PG_RECENT)
        self._tasks = await conn.prepare(PG_TASKS)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def drop(self) -> None:
        if self._scratch:
            await drop_scratch(self.ctx, self._scratch)

    async def append(self, conv: Conv, text: str) -> Any:
        return await self._append.fetchval(conv.id, conv.user_id, now(), uuid7(), text, TITLE, "{}")

    async def last50(self, conv: Conv) -> Any:
        return await self._history.fetch(conv.id, conv.user_id)

    async def recent20(self, user_id: uuid.UUID) -> Any:
        return await self._recent.fetch(user_id)

    async def pending_tasks(self, user_id: uuid.UUID) -> Any:
        return await self._tasks.fetch(user_id, self.heavy_tag)

    async def new_conversation(self, user_id: uuid.UUID, title: str) -> Conv:
        assert self.conn is not None
        conv = Conv(uuid7(), user_id)
        await self.conn.execute(PG_NEW_CONVERSATION, conv.id, user_id, title, now())
        return conv

    async def append_batch(self, conv: Conv, items: list[tuple[str, str]]) -> Any:
        return await self._append_many.fetch(*_batch_args(conv, items))

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        url = pg_plain(self.ctx.dataset_url)
        self._writer_conns = [await asyncpg.connect(url) for _ in range(count)]
        ops: list[Op] = []
        for c in self._writer_conns:
            stmt = await c.prepare(PG_APPEND)

            async def write(text: str, stmt: Any = stmt) -> None:
                await stmt.fetchval(conv.id, conv.user_id, now(), uuid7(), text, TITLE, "{}")

            ops.append(write)
        return ops

    async def release_writers(self, writers: list[Op]) -> None:
        for c in self._writer_conns:
            await c.close()

    async def check_w5(self, conv: Conv, writers: int, per_writer: int) -> dict[str, Any]:
        return await check_w5(self.ctx.backend, self.ctx.dataset_url, conv.id, writers, per_writer)


def to_psycopg(sql: str) -> str:
    """``$n`` placeholders as psycopg's named ``%(pn)s``."""
    return re.sub(r"\$(\d+)", r"%(p\1)s", sql)


def _named(args: Sequence[Any]) -> dict[str, Any]:
    return {f"p{i}": v for i, v in enumerate(args, start=1)}


class RawPsycopg(Implementation):
    """psycopg 3, synchronous, autocommit, server-side prepared statements (``prepare=True``),
    ``jsonb`` loaded as text."""

    name = "raw psycopg"
    kind = "raw"
    slug = "raw_psycopg"
    distributions = ("psycopg",)
    setup_note = "psycopg 3 sync, prepare=True, autocommit, jsonb loaded as text"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.conn: Any = None
        self._scratch: str | None = None
        self.heavy_tag = json.dumps([W6_TAG])
        self.sql = {
            name: to_psycopg(sql)
            for name, sql in (
                ("append", PG_APPEND),
                ("append_many", PG_APPEND_MANY),
                ("history", PG_HISTORY),
                ("recent", PG_RECENT),
                ("tasks", PG_TASKS),
                ("new", PG_NEW_CONVERSATION),
                ("load", PG_LOAD_MANY),
            )
        }

    def _connect(self, url: str) -> Any:
        import psycopg
        from psycopg.types.string import TextLoader

        conn = psycopg.connect(pg_plain(url), autocommit=True)
        for name in ("json", "jsonb"):
            conn.adapters.register_loader(name, TextLoader)
        return conn

    async def setup(self) -> None:
        self._scratch = await scratch(self.ctx, "load_" + self.slug)
        self._load = self._connect(self._scratch)

    def load_conversation(self, conversation: Conversation) -> None:  # type: ignore[override]
        conv, messages = conversation.conv, conversation.messages
        title = _first_title(messages)
        with self._load.transaction():
            self._load.execute(
                self.sql["new"], _named((conv.id, conv.user_id, None, now())), prepare=True
            )
            for chunk in chunks(messages):
                self._load.execute(
                    self.sql["load"], _named(_load_args(conv, chunk, title)), prepare=True
                )

    async def after_load(self) -> None:
        self._load.close()
        assert self._scratch is not None
        await drop_scratch(self.ctx, self._scratch)
        self._scratch = None

    async def ready(self, convs: Sequence[Conv]) -> None:
        self.conn = self._connect(self.ctx.dataset_url)

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    async def drop(self) -> None:
        if self._scratch:
            await drop_scratch(self.ctx, self._scratch)

    def _run(self, name: str, *args: Any) -> list[Any]:
        cur = self.conn.execute(self.sql[name], _named(args), prepare=True)
        return cur.fetchall() if cur.description else []

    def append(self, conv: Conv, text: str) -> Any:
        return self._run("append", conv.id, conv.user_id, now(), uuid7(), text, TITLE, "{}")

    def last50(self, conv: Conv) -> Any:
        return self._run("history", conv.id, conv.user_id)

    def recent20(self, user_id: uuid.UUID) -> Any:
        return self._run("recent", user_id)

    def pending_tasks(self, user_id: uuid.UUID) -> Any:
        return self._run("tasks", user_id, self.heavy_tag)

    def new_conversation(self, user_id: uuid.UUID, title: str) -> Conv:
        conv = Conv(uuid7(), user_id)
        self._run("new", conv.id, user_id, title, now())
        return conv

    def append_batch(self, conv: Conv, items: list[tuple[str, str]]) -> Any:
        return self._run("append_many", *_batch_args(conv, items))

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        self._writer_conns = [self._connect(self.ctx.dataset_url) for _ in range(count)]
        sql = self.sql["append"]
        ops: list[Op] = []
        for c in self._writer_conns:

            def write(text: str, c: Any = c) -> None:
                args = (conv.id, conv.user_id, now(), uuid7(), text, TITLE, "{}")
                c.execute(sql, _named(args), prepare=True).fetchall()

            ops.append(write)
        return ops

    async def release_writers(self, writers: list[Op]) -> None:
        for c in self._writer_conns:
            c.close()

    async def check_w5(self, conv: Conv, writers: int, per_writer: int) -> dict[str, Any]:
        return await check_w5(self.ctx.backend, self.ctx.dataset_url, conv.id, writers, per_writer)


# --- SQLite -------------------------------------------------------------------------------

SQ_BUMP = """
UPDATE conversations SET messages_count = messages_count + ?, last_message_at = ?,
    updated_at = ?, title = COALESCE(title, ?)
WHERE id = ? AND user_id = ? AND deleted_at IS NULL
RETURNING messages_count"""
SQ_INSERT = """
INSERT INTO messages (id, conversation_id, user_id, seq, role, content, status, tool_calls,
    tool_call_id, attributes, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
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

Row = tuple[str, str, str, str | None, str | None]
"""(id, role, content, tool_calls JSON, tool_call_id) of a message to insert."""


def _ts(at: datetime) -> str:
    return at.replace(tzinfo=None).isoformat(" ", timespec="microseconds")


def sqlite_connect(path: str) -> sqlite3.Connection:
    """The library's pragmas; autocommit, transactions begun explicitly."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in (
        "foreign_keys = ON",
        "busy_timeout = 5000",
        "journal_mode = WAL",
        "synchronous = FULL",
    ):
        db.execute(f"PRAGMA {pragma}")
    return db


def sqlite_append(
    db: sqlite3.Connection, cid: str, uid: str, rows: list[Row], title: str | None = TITLE
) -> int:
    """BEGIN IMMEDIATE; bump the counter; insert; COMMIT — as the library does."""
    at = _ts(now())
    db.execute("BEGIN IMMEDIATE")
    try:
        (last,) = db.execute(SQ_BUMP, (len(rows), at, at, title, cid, uid)).fetchone()
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
                    tool_calls,
                    tool_call_id,
                    "{}",
                    at,
                    at,
                )
                for k, (mid, role, content, tool_calls, tool_call_id) in enumerate(rows)
            ],
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return int(last)


def _user_row(text: str) -> list[Row]:
    return [(uuid7().hex, "user", text, None, None)]


class RawSqlite(Implementation):
    """The stdlib driver, synchronous, in the caller's thread."""

    name = "raw sqlite3"
    kind = "raw"
    slug = "raw_sqlite3"
    distributions = ()
    setup_note = "stdlib sqlite3, synchronous in the caller's thread, the library's pragmas"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.db: sqlite3.Connection | None = None
        self._scratch: str | None = None

    def versions(self) -> dict[str, str]:
        return {"sqlite": sqlite3.sqlite_version}

    async def setup(self) -> None:
        self._scratch = await scratch(self.ctx, "load_" + self.slug)
        self._load = sqlite_connect(str(sqlite_file(self._scratch)))

    def load_conversation(self, conversation: Conversation) -> None:  # type: ignore[override]
        conv, messages = conversation.conv, conversation.messages
        cid, uid = conv.id.hex, conv.user_id.hex
        at = _ts(now())
        self._load.execute(SQ_NEW_CONVERSATION, (cid, uid, None, at, at))
        title = _first_title(messages)
        for chunk in chunks(messages):
            rows: list[Row] = [
                (
                    uuid7().hex,
                    m.role,
                    m.content,
                    json.dumps(m.tool_calls) if m.tool_calls else None,
                    m.tool_call_id,
                )
                for m in chunk
            ]
            sqlite_append(self._load, cid, uid, rows, title)

    async def after_load(self) -> None:
        self._load.close()
        assert self._scratch is not None
        await drop_scratch(self.ctx, self._scratch)
        self._scratch = None

    async def ready(self, convs: Sequence[Conv]) -> None:
        self.path = str(sqlite_file(self.ctx.dataset_url))
        self.db = sqlite_connect(self.path)

    async def close(self) -> None:
        if self.db is not None:
            self.db.close()

    async def drop(self) -> None:
        if self._scratch:
            await drop_scratch(self.ctx, self._scratch)

    def append(self, conv: Conv, text: str) -> Any:
        assert self.db is not None
        return sqlite_append(self.db, conv.id.hex, conv.user_id.hex, _user_row(text))

    def last50(self, conv: Conv) -> Any:
        assert self.db is not None
        c, u = conv.id.hex, conv.user_id.hex
        return self.db.execute(SQ_HISTORY, (c, u, c, u)).fetchall()

    def recent20(self, user_id: uuid.UUID) -> Any:
        assert self.db is not None
        return self.db.execute(SQ_RECENT, (user_id.hex,)).fetchall()

    def pending_tasks(self, user_id: uuid.UUID) -> Any:
        assert self.db is not None
        return self.db.execute(SQ_TASKS, (user_id.hex, W6_TAG)).fetchall()

    def new_conversation(self, user_id: uuid.UUID, title: str) -> Conv:
        assert self.db is not None
        conv = Conv(uuid7(), user_id)
        at = _ts(now())
        self.db.execute(SQ_NEW_CONVERSATION, (conv.id.hex, user_id.hex, title, at, at))
        return conv

    def append_batch(self, conv: Conv, items: list[tuple[str, str]]) -> Any:
        assert self.db is not None
        rows: list[Row] = [(uuid7().hex, r, c, None, None) for r, c in items]
        return sqlite_append(self.db, conv.id.hex, conv.user_id.hex, rows)

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        """A connection per writer thread; one in-process lock orders the writers, as the
        library's write lock does (no busy-wait on SQLite's file lock)."""
        lock = threading.Lock()
        self._writer_conns = [sqlite_connect(self.path) for _ in range(count)]
        cid, uid = conv.id.hex, conv.user_id.hex
        ops: list[Op] = []
        for c in self._writer_conns:

            def write(text: str, c: sqlite3.Connection = c) -> None:
                with lock:
                    sqlite_append(c, cid, uid, _user_row(text))

            ops.append(write)
        return ops

    async def release_writers(self, writers: list[Op]) -> None:
        for c in self._writer_conns:
            c.close()

    async def check_w5(self, conv: Conv, writers: int, per_writer: int) -> dict[str, Any]:
        return await check_w5(self.ctx.backend, self.ctx.dataset_url, conv.id, writers, per_writer)


async def warm(backend: str, url: str, convs: Sequence[Conv]) -> None:
    """Read the last messages of every sampled conversation once (a warm cache for all)."""
    if backend == "postgresql":
        conn = await asyncpg.connect(pg_plain(url))
        try:
            for conv in convs:
                await conn.fetch(PG_HISTORY, conv.id, conv.user_id)
        finally:
            await conn.close()
        return
    db = sqlite3.connect(sqlite_file(url))
    try:
        for conv in convs:
            c, u = conv.id.hex, conv.user_id.hex
            db.execute(SQ_HISTORY, (c, u, c, u)).fetchall()
    finally:
        db.close()
