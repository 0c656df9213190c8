"""Test databases: a fresh SQLite file or a fresh PostgreSQL database, created and dropped by
the tests themselves. PostgreSQL is required when ``CI`` is set; elsewhere its tests skip with
the reason when no server answers."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get(
    "CONVSTORE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
"""A PostgreSQL server where tests may create and drop their own databases."""
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_pg_error: str | None = None
_pg_checked = False


async def _pg_reachable() -> str | None:
    global _pg_checked, _pg_error
    if not _pg_checked:
        _pg_checked = True
        try:
            conn = await asyncpg.connect(_plain(PG_ADMIN_URL), timeout=5)
            await conn.close()
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            _pg_error = f"{type(exc).__name__}: {exc}"
    return _pg_error


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def plain(url: str) -> str:
    """``url`` as asyncpg and libpq take it (no ``+driver``)."""
    return _plain(url)


async def require_postgres() -> None:
    """Fail in CI, skip elsewhere, when the PostgreSQL test server cannot be reached."""
    error = await _pg_reachable()
    if error is None:
        return
    message = f"PostgreSQL at {make_url(PG_ADMIN_URL).render_as_string()} unreachable ({error})"
    if IN_CI:
        pytest.fail(f"{message}; CI requires PostgreSQL", pytrace=False)
    pytest.skip(f"{message}; set CONVSTORE_TEST_DATABASE_URL to run the PostgreSQL tests")


@contextlib.asynccontextmanager
async def fresh_database(kind: str, directory: Path) -> AsyncIterator[str]:
    """An empty database of ``kind`` ("sqlite" or "postgresql"); its URL, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'convstore-{uuid.uuid4().hex[:8]}.db'}"
        return
    await require_postgres()
    name = f"convstore_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_plain(PG_ADMIN_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_plain(PG_ADMIN_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
