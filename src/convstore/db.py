"""Engines and the database dialect specifics.

convstore picks its own async driver: ``sqlite://`` runs on aiosqlite, ``postgresql://`` on
asyncpg. Every SQLite connection gets foreign keys on, WAL, a busy timeout and explicit
``BEGIN`` handling (``BEGIN IMMEDIATE`` for writes), so concurrent writers queue instead of
failing with "database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from convstore.config import Settings
from convstore.errors import InvalidInput

WRITE_OPTION = "convstore_write"
"""Execution option marking a connection that will write (SQLite: ``BEGIN IMMEDIATE``)."""

_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_SYNC_DRIVERS = {"pysqlite", "psycopg2", "psycopg2cffi", "pg8000", "pygresql"}


def normalize_url(url: str | URL) -> URL:
    """Turn a plain or driver-qualified database URL into the async URL convstore runs on.

    ``sqlite:///x.db`` and ``sqlite+pysqlite:///x.db`` become ``sqlite+aiosqlite:///x.db``;
    ``postgres://``, ``postgresql://`` and sync drivers such as ``+psycopg2`` become
    ``postgresql+asyncpg://``. ``postgresql+psycopg://`` is kept when psycopg is installed.

    Raises:
        InvalidInput: the URL cannot be parsed or names a database convstore does not support.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError as exc:
        raise InvalidInput(f"not a database URL: {exc}", field="database_url") from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend not in _ASYNC_DRIVERS:
        raise InvalidInput(
            f"unsupported database {backend!r}: use sqlite:// or postgresql://",
            field="database_url",
        )
    driver = parsed.get_driver_name() if "+" in parsed.drivername else ""
    if driver == "psycopg" and importlib.util.find_spec("psycopg") is not None:
        return parsed.set(drivername="postgresql+psycopg")
    if driver and driver not in _SYNC_DRIVERS and driver != _ASYNC_DRIVERS[backend]:
        raise InvalidInput(f"unsupported driver {driver!r}", field="database_url")
    parsed = parsed.set(drivername=f"{backend}+{_ASYNC_DRIVERS[backend]}")
    if backend == "postgresql" and "sslmode" in parsed.query:
        # libpq spells it sslmode; asyncpg takes the same values as ssl.
        query = dict(parsed.query)
        query["ssl"] = query.pop("sslmode")
        parsed = parsed.set(query=query)
    return parsed


def is_sqlite(url: URL) -> bool:
    """Whether ``url`` points at SQLite."""
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    if not url.database or url.database == ":memory:" or url.database.startswith("file::memory"):
        return None
    return Path(url.database)


def create_engine(
    settings: Settings, *, url: str | URL | None = None, pooled: bool = True
) -> AsyncEngine:
    """Build the process's engine for ``url`` (default: ``settings.database_url``).

    Args:
        settings: pool sizes, timeouts and SQLite pragmas come from here.
        url: overrides ``settings.database_url``.
        pooled: False gives a NullPool engine (one connection per use: migrations, CLI).
    """
    target = normalize_url(url if url is not None else settings.database_url)
    kwargs: dict[str, Any] = {"echo": settings.db_echo}
    if not pooled:
        kwargs["poolclass"] = NullPool
    if is_sqlite(target):
        path = sqlite_path(target)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if pooled and path is not None:  # in-memory databases live on one shared connection
            kwargs.update(pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
            kwargs.update(pool_timeout=settings.db_pool_timeout, pool_pre_ping=False)
        engine = create_async_engine(target, **kwargs)
        _install_sqlite_hooks(engine, settings)
        return engine
    if pooled:
        kwargs.update(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
            pool_pre_ping=settings.db_pool_pre_ping,
        )
    return create_async_engine(target, **kwargs)


def _install_sqlite_hooks(engine: AsyncEngine, settings: Settings) -> None:
    """Pragmas on every new connection, and our own BEGIN (the driver's is turned off)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's implicit transactions would defer BEGIN past our pragmas and make
        # SAVEPOINT unusable; we issue BEGIN ourselves in the "begin" hook below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(settings.sqlite_busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {settings.sqlite_synchronous}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that later writes cannot wait for the lock (SQLite answers
        # "database is locked" at once to avoid deadlock); writers take the lock up front.
        writes = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


class Database:
    """One engine plus the transaction boundaries every entry point uses.

    On SQLite, writers of this process also queue on an asyncio lock: the database admits one
    writer at a time, and waiting on a lock is cheaper than polling ``busy_timeout``.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a read transaction, rolled back (nothing to keep) at the end."""
        async with self.engine.connect() as conn:
            async with conn.begin():
                yield conn

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction: committed on success, rolled back on error."""
        if self._write_lock is None:
            async with self._writer.begin() as conn:
                yield conn
            return
        async with self._write_lock, self._writer.begin() as conn:
            yield conn

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
