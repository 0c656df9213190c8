"""The HTTP bound: a bare FastAPI app doing convstore's last-50 read and its append on the same
tables, with the least a real service does: one session lookup per request for auth (an
opaque bearer token in ``bench_sessions``), the raw driver's statements (bench/raw.py), orjson
responses built straight from the driver's rows (JSON columns passed through as text).

PostgreSQL through an asyncpg pool (the size of convstore's default pool, 10 + 5); SQLite
through aiosqlite (a reading and a writing connection, appends one at a time). No validation
models, no middleware, no rate limits, no access log.

    BENCH_BARE_DATABASE_URL=postgresql://… python -m uvicorn bench.bareapp:app --no-access-log
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import asyncpg
import orjson
from fastapi import FastAPI, Request, Response

from bench.raw import (
    MESSAGE_COLS,
    PG_APPEND,
    PG_HISTORY,
    SQ_BUMP,
    SQ_HISTORY,
    SQ_INSERT,
    TITLE,
)
from convstore.kit.types import uuid7

SESSIONS_PG = "CREATE TABLE IF NOT EXISTS bench_sessions (token text PRIMARY KEY, user_id uuid)"
SESSIONS_SQLITE = (
    "CREATE TABLE IF NOT EXISTS bench_sessions (token TEXT PRIMARY KEY, user_id TEXT NOT NULL)"
)
COLUMNS = [c.strip() for c in MESSAGE_COLS.split(",")]
JSON_COLUMNS = {"tool_calls", "tool_results", "attributes", "usage"}
UUID_COLUMNS = {"id", "conversation_id", "parent_id"}
TIME_COLUMNS = {"created_at", "updated_at"}
ROLES = {"user", "assistant", "system", "tool"}

PROBLEM = "application/problem+json"


def _problem(status: int, title: str) -> Response:
    body = orjson.dumps({"type": "about:blank", "title": title, "status": status})
    return Response(body, status_code=status, media_type=PROBLEM)


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:] if header[:7].lower() == "bearer " else None


def _page(messages: list[dict[str, Any]], limit: int) -> bytes:
    more = len(messages) > limit
    items = messages[:limit][::-1]
    cursor = str(items[0]["seq"]) if more and items else None
    return orjson.dumps({"items": items, "next_cursor": cursor, "has_more": more})


class _Postgres:
    def __init__(self, url: str) -> None:
        self.url = url
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(self.url, min_size=10, max_size=15)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    @staticmethod
    def _message(row: asyncpg.Record) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in COLUMNS:
            value = row[name]
            if value is not None:
                if name in JSON_COLUMNS:
                    value = orjson.Fragment(value)
                elif name in UUID_COLUMNS:
                    value = str(value)  # asyncpg's own UUID type, which orjson does not know
            out["metadata" if name == "attributes" else name] = value
        return out

    async def history(self, token: str, cid: uuid.UUID, limit: int) -> Response:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            user = await conn.fetchval("SELECT user_id FROM bench_sessions WHERE token = $1", token)
            if user is None:
                return _problem(401, "Not authenticated")
            rows = await conn.fetch(PG_HISTORY, cid, user)
        if not rows:
            return _problem(404, "Conversation not found")
        body = _page([self._message(r) for r in rows], limit)
        return Response(body, media_type="application/json")

    async def append(self, token: str, cid: uuid.UUID, role: str, content: str) -> Response:
        assert self.pool is not None
        at = datetime.now(UTC)
        mid = uuid7()
        async with self.pool.acquire() as conn:
            user = await conn.fetchval("SELECT user_id FROM bench_sessions WHERE token = $1", token)
            if user is None:
                return _problem(401, "Not authenticated")
            seq = await conn.fetchval(PG_APPEND, cid, user, at, mid, content, TITLE, "{}")
        if seq is None:
            return _problem(404, "Conversation not found")
        return _created(mid, cid, seq, role, content, at)


def _created(
    mid: uuid.UUID, cid: uuid.UUID, seq: int, role: str, content: str, at: datetime
) -> Response:
    body = orjson.dumps(
        {
            "id": mid,
            "conversation_id": cid,
            "seq": seq,
            "role": role,
            "content": content,
            "status": "sent" if role == "user" else "complete",
            "tool_calls": None,
            "tool_results": None,
            "tool_call_id": None,
            "metadata": {},
            "parent_id": None,
            "usage": None,
            "created_at": at,
            "updated_at": at,
        }
    )
    return Response(body, status_code=201, media_type="application/json")


class _Sqlite:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = asyncio.Lock()

    async def _connect(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in ("foreign_keys = ON", "busy_timeout = 5000", "synchronous = FULL"):
            await db.execute(f"PRAGMA {pragma}")
        return db

    async def open(self) -> None:
        self.reader = await self._connect()
        self.writer = await self._connect()

    async def close(self) -> None:
        await self.reader.close()
        await self.writer.close()

    async def _user(self, token: str) -> str | None:
        rows = await self.reader.execute_fetchall(
            "SELECT user_id FROM bench_sessions WHERE token = ?", (token,)
        )
        return str(next(iter(rows))[0]) if rows else None

    @staticmethod
    def _message(row: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in zip(COLUMNS, row, strict=True):
            if value is not None:
                if name in JSON_COLUMNS:
                    value = orjson.Fragment(value)
                elif name in UUID_COLUMNS:
                    value = str(uuid.UUID(value))
                elif name in TIME_COLUMNS:
                    value = value.replace(" ", "T") + "Z"
            out["metadata" if name == "attributes" else name] = value
        return out

    async def history(self, token: str, cid: uuid.UUID, limit: int) -> Response:
        user = await self._user(token)
        if user is None:
            return _problem(401, "Not authenticated")
        c = cid.hex
        rows = list(await self.reader.execute_fetchall(SQ_HISTORY, (c, user, c, user)))
        if not rows:
            return _problem(404, "Conversation not found")
        body = _page([self._message(r) for r in rows], limit)
        return Response(body, media_type="application/json")

    async def append(self, token: str, cid: uuid.UUID, role: str, content: str) -> Response:
        user = await self._user(token)
        if user is None:
            return _problem(401, "Not authenticated")
        at = datetime.now(UTC)
        ts = at.replace(tzinfo=None).isoformat(" ", timespec="microseconds")
        mid = uuid7()
        status = "sent" if role == "user" else "complete"
        async with self.lock:
            db = self.writer
            await db.execute("BEGIN IMMEDIATE")
            try:
                rows = list(await db.execute_fetchall(SQ_BUMP, (1, ts, ts, TITLE, cid.hex, user)))
                if not rows:
                    await db.execute("ROLLBACK")
                    return _problem(404, "Conversation not found")
                seq = int(rows[0][0])
                values = (mid.hex, cid.hex, user, seq, role, content, status)
                await db.execute(SQ_INSERT, (*values, None, None, "{}", ts, ts))
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise
        return _created(mid, cid, seq, role, content, at)


def create_app(url: str) -> FastAPI:
    store: _Postgres | _Sqlite = (
        _Postgres(url.replace("postgresql+asyncpg://", "postgresql://"))
        if url.startswith("postgresql")
        else _Sqlite(url.split("///", 1)[1])
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.open()
        try:
            yield
        finally:
            await store.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/api/v1/conversations/{conversation_id}/messages")
    async def history(conversation_id: str, request: Request) -> Response:
        token = _token(request)
        if token is None:
            return _problem(401, "Not authenticated")
        try:
            cid = uuid.UUID(conversation_id)
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            return _problem(422, "Invalid conversation id or limit")
        if not 1 <= limit <= 200:
            return _problem(422, "limit must be between 1 and 200")
        return await store.history(token, cid, limit)

    @app.post("/api/v1/conversations/{conversation_id}/messages")
    async def append(conversation_id: str, request: Request) -> Response:
        token = _token(request)
        if token is None:
            return _problem(401, "Not authenticated")
        try:
            cid = uuid.UUID(conversation_id)
            body = orjson.loads(await request.body())
        except (ValueError, orjson.JSONDecodeError):
            return _problem(422, "Invalid conversation id or body")
        role, content = body.get("role"), body.get("content", "")
        if role not in ROLES or not isinstance(content, str):
            return _problem(422, "role or content is invalid")
        return await store.append(token, cid, role, content)

    return app


def app() -> FastAPI:
    """uvicorn's factory (``--factory``): the database comes from the environment."""
    return create_app(os.environ["BENCH_BARE_DATABASE_URL"])
