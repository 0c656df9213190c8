"""Load a generated dataset: PostgreSQL through COPY (asyncpg), SQLite through ``executemany``
in large transactions. Both stream in chunks, so the loader's memory does not grow with N."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

import convstore
from bench.dataset import BENCH_PASSWORD, Generator, Shape, UserRows
from bench.procinfo import rss_mb
from convstore import Settings

CHUNK_MESSAGES = 20_000
"""Rows buffered before a flush (a COPY, or one SQLite transaction)."""

USER_COLUMNS = "id email hashed_password name role is_active created_at updated_at".split()
CONVERSATION_COLUMNS = (
    "id user_id title attributes messages_count last_message_at created_at updated_at".split()
)
MESSAGE_COLUMNS = (
    "id conversation_id user_id seq role content status tool_calls tool_results tool_call_id "
    "attributes parent_id usage deleted_at created_at updated_at"
).split()
TASK_COLUMNS = (
    "id user_id title description completed completed_at priority tags due_at created_at updated_at"
).split()
TABLES = (
    ("users", USER_COLUMNS),
    ("conversations", CONVERSATION_COLUMNS),
    ("messages", MESSAGE_COLUMNS),
    ("tasks", TASK_COLUMNS),
)
JSON_COLUMNS = {"attributes", "tool_calls", "tool_results", "usage", "tags"}


@dataclass
class LoadStats:
    messages: int
    conversations: int
    users: int
    tasks: int
    seconds: float
    peak_rss_mb: float
    rss_samples_mb: list[float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "conversations": self.conversations,
            "users": self.users,
            "tasks": self.tasks,
            "seconds": round(self.seconds, 2),
            "rows_per_second": round(self.messages / self.seconds) if self.seconds else None,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "rss_first_mb": round(self.rss_samples_mb[0], 1) if self.rss_samples_mb else None,
            "rss_last_mb": round(self.rss_samples_mb[-1], 1) if self.rss_samples_mb else None,
        }


def password_hash() -> str:
    """One Argon2id hash shared by every generated user, with the server's default parameters
    (as a user's hash has once they signed in): a login is then one verify, not a verify and a
    rehash (two Argon2 runs, whose memory the server's peak RSS would keep)."""
    defaults = Settings.model_fields
    return PasswordHasher(
        time_cost=defaults["password_hash_time_cost"].default,
        memory_cost=defaults["password_hash_memory_kib"].default,
        parallelism=defaults["password_hash_parallelism"].default,
    ).hash(BENCH_PASSWORD)


def _batches(gen: Generator) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Whole users grouped until a chunk holds about CHUNK_MESSAGES messages."""
    buffer: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in TABLES}
    for rows in gen.users():
        _add(buffer, rows)
        if len(buffer["messages"]) >= CHUNK_MESSAGES:
            yield buffer
            buffer = {name: [] for name, _ in TABLES}
    if any(buffer.values()):
        yield buffer


def _add(buffer: dict[str, list[dict[str, Any]]], rows: UserRows) -> None:
    buffer["users"].append(rows.user)
    buffer["conversations"].extend(rows.conversations)
    buffer["messages"].extend(rows.messages)
    buffer["tasks"].extend(rows.tasks)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )


async def prepare(url: str, settings: Settings) -> None:
    """Build the schema with convstore's own migrations."""
    async with convstore.open(url, settings=settings, migrate=True):
        pass


async def load(url: str, shape: Shape, *, quiet: bool = False) -> LoadStats:
    """Fill an empty, migrated database at ``url`` with ``shape``."""
    gen = Generator(shape, password_hash())
    counts = dict.fromkeys(("messages", "conversations", "users", "tasks"), 0)
    samples: list[float] = []
    start = time.perf_counter()
    writer = _PgWriter(url) if url.startswith("postgresql") else _SqliteWriter(url)
    await writer.open()
    total = (
        shape.messages
        + shape.heavy_conversations * shape.heavy_messages_per_conversation
        + shape.long_messages
    )
    try:
        with _progress() as progress:
            bar = progress.add_task(f"load {total:,} messages", total=total, rate="")
            progress.disable = quiet
            for batch in _batches(gen):
                await writer.write(batch)
                for name in counts:
                    counts[name] += len(batch[name])
                samples.append(rss_mb())
                rate = counts["messages"] / (time.perf_counter() - start)
                progress.update(bar, completed=counts["messages"], rate=f"{rate:,.0f} msg/s")
        await writer.finish()
    finally:
        await writer.close()
    return LoadStats(
        messages=counts["messages"],
        conversations=counts["conversations"],
        users=counts["users"],
        tasks=counts["tasks"],
        seconds=time.perf_counter() - start,
        peak_rss_mb=max(samples) if samples else rss_mb(),
        rss_samples_mb=samples,
    )


class _PgWriter:
    """COPY (binary) through asyncpg, one transaction per chunk, parents before children."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+asyncpg://", "postgresql://")
        self.conn: asyncpg.Connection | None = None

    async def open(self) -> None:
        self.conn = await asyncpg.connect(self.url)
        # A bulk load may skip the per-commit WAL flush; the data is checkpointed at the end.
        await self.conn.execute("SET synchronous_commit = off")

    async def write(self, batch: dict[str, list[dict[str, Any]]]) -> None:
        assert self.conn is not None
        async with self.conn.transaction():
            for name, columns in TABLES:
                if batch[name]:
                    await self.conn.copy_records_to_table(
                        name, records=_pg_records(batch[name], columns), columns=columns
                    )

    async def finish(self) -> None:
        assert self.conn is not None
        await vacuum(self.conn)
        await self.conn.execute("CHECKPOINT")

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


async def vacuum(conn: asyncpg.Connection) -> None:
    """Statistics and the visibility map, as autovacuum would leave them."""
    await conn.execute("VACUUM (ANALYZE)")


def _pg_records(rows: list[dict[str, Any]], columns: list[str]) -> Iterable[tuple[Any, ...]]:
    json_at = [i for i, c in enumerate(columns) if c in JSON_COLUMNS]
    for row in rows:
        values = [row[c] for c in columns]
        for i in json_at:
            if values[i] is not None:
                values[i] = json.dumps(values[i])
        yield tuple(values)


class _SqliteWriter:
    """The stdlib driver under aiosqlite, in a worker thread, one transaction per chunk."""

    def __init__(self, url: str) -> None:
        self.path = Path(url.split("///", 1)[1])
        self.db: sqlite3.Connection | None = None

    async def open(self) -> None:
        self.db = await asyncio.to_thread(self._connect)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = OFF")  # the load only; the workloads run with FULL
        db.execute("PRAGMA foreign_keys = ON")
        return db

    async def write(self, batch: dict[str, list[dict[str, Any]]]) -> None:
        await asyncio.to_thread(self._write, batch)

    def _write(self, batch: dict[str, list[dict[str, Any]]]) -> None:
        assert self.db is not None
        self.db.execute("BEGIN")
        for name, columns in TABLES:
            if batch[name]:
                marks = ", ".join("?" * len(columns))
                self.db.executemany(
                    f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})",
                    _sqlite_records(batch[name], columns),
                )
        self.db.execute("COMMIT")

    async def finish(self) -> None:
        assert self.db is not None
        await asyncio.to_thread(self.db.execute, "ANALYZE")
        await asyncio.to_thread(self.db.execute, "PRAGMA wal_checkpoint(TRUNCATE)")

    async def close(self) -> None:
        if self.db is not None:
            self.db.close()


def _sqlite_value(value: Any, column: str) -> Any:
    """SQLAlchemy's SQLite storage: UUIDs as 32 hex digits, UTC text timestamps, JSON text."""
    if value is None:
        return None
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(" ", timespec="microseconds")
    if column in JSON_COLUMNS:
        return json.dumps(value)
    return value


def _sqlite_records(rows: list[dict[str, Any]], columns: list[str]) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        yield tuple(_sqlite_value(row[c], c) for c in columns)


async def create_pg_database(admin_url: str, name: str) -> str:
    """Drop and create ``name``; its URL."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}"


async def drop_pg_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
