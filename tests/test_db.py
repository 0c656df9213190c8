"""Settings, URLs and the connection behaviour every store relies on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite

import convstore
from convstore import Settings, Store
from convstore.config import DEFAULT_DATABASE_URL
from convstore.db import create_engine, normalize_url
from convstore.kit.types import DateTimeUTC
from tests.conftest import fast_settings


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+pysqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h:5433/db", "postgresql+asyncpg://u@h:5433/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_plain_and_driver_qualified_urls_pick_the_async_driver(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string() == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url", "postgresql+nodriver://u@h/db"])
def test_unsupported_urls_are_invalid_input(url: str) -> None:
    with pytest.raises(convstore.InvalidInput) as exc:
        normalize_url(url)
    assert exc.value.fields == ["database_url"]


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert defaults.database_url == DEFAULT_DATABASE_URL == "sqlite:///convstore.db"
    assert (defaults.db_pool_size, defaults.db_max_overflow) == (10, 5)
    assert (defaults.db_pool_timeout, defaults.db_pool_recycle) == (30, 3600)
    assert defaults.db_pool_pre_ping is True
    limits = defaults.limits
    assert (limits.max_user_message_chars, limits.max_assistant_message_chars) == (10_000, 200_000)
    assert (limits.max_metadata_keys, limits.max_metadata_key_chars) == (16, 64)
    assert limits.max_metadata_value_chars == 512
    monkeypatch.setenv("CONVSTORE_DATABASE_URL", "postgresql://app@db/chat")
    monkeypatch.setenv("CONVSTORE_DB_POOL_SIZE", "3")
    monkeypatch.setenv("CONVSTORE_MAX_USER_MESSAGE_CHARS", "500")
    changed = Settings()
    assert changed.database_url == "postgresql://app@db/chat"
    assert changed.db_pool_size == 3
    assert changed.limits.max_user_message_chars == 500


def test_password_hashing_below_owasp_floor_is_refused() -> None:
    with pytest.raises(ValueError, match="password_hash_memory_kib"):
        Settings(password_hash_memory_kib=1024)


async def test_every_sqlite_connection_has_foreign_keys_wal_and_busy_timeout(
    tmp_path: Path,
) -> None:
    settings = fast_settings(db_pool_size=3, sqlite_busy_timeout_ms=7000)
    engine = create_engine(settings, url=f"sqlite:///{tmp_path / 'p.db'}")
    try:
        conns = [await engine.connect() for _ in range(4)]  # pool of 3 plus one overflow
        for conn in conns:
            fk = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
            assert (fk, mode, busy) == (1, "wal", 7000)
        for conn in conns:
            await conn.close()
    finally:
        await engine.dispose()


async def test_timestamps_come_back_aware_in_utc(store: Store) -> None:
    user = await store.users.create(email=f"tz-{datetime.now(UTC).timestamp()}@example.com")
    me = store.for_user(user.id)
    due = datetime(2030, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    task = await me.tasks.create(title="aware", due_at=due)
    read = await me.tasks.get(task.id)
    assert read.due_at == due
    assert read.due_at is not None
    assert read.due_at.utcoffset() == timedelta(0)
    assert read.created_at.tzinfo is not None


async def test_rows_read_on_the_driver_come_back_aware_in_utc(store: Store) -> None:
    # History, conversation and task lists run on the driver (DriverStatement): asyncpg's own
    # timestamptz values, SQLite's text parsed by the column type.
    user = await store.users.create(email=f"tzd-{datetime.now(UTC).timestamp()}@example.com")
    me = store.for_user(user.id)
    conv = await me.conversations.create(title="t")
    sent = await me.messages.append(conv.id, role="user", content="hi")
    await me.tasks.create(title="aware", due_at=datetime(2030, 5, 1, 9, 30, tzinfo=UTC))
    (message,) = await me.messages.history(conv.id)
    (listed,) = (await me.conversations.list()).items
    (task,) = (await me.tasks.list()).items
    stamps = [message.created_at, listed.updated_at, listed.last_message_at, task.due_at]
    for stamp in stamps:
        assert stamp is not None
        assert stamp.utcoffset() == timedelta(0)
    assert message.created_at == sent.created_at
    assert listed.last_message_at == sent.created_at


async def test_a_transaction_left_open_on_the_driver_is_rolled_back_on_return(
    tmp_path: Path,
) -> None:
    # SQLite connections are reset on return only when the driver holds a transaction.
    settings = fast_settings(db_pool_size=1, db_max_overflow=0)
    engine = create_engine(settings, url=f"sqlite:///{tmp_path / 'r.db'}")
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn = await engine.connect()
        driver: Any = (await conn.get_raw_connection()).driver_connection
        await driver.execute("BEGIN IMMEDIATE")
        await driver.execute("INSERT INTO t VALUES (1)")
        assert driver.in_transaction
        await conn.close()
        async with engine.connect() as again:
            same: Any = (await again.get_raw_connection()).driver_connection
            assert same is driver
            assert not same.in_transaction
            assert (await again.exec_driver_sql("SELECT count(*) FROM t")).scalar() == 0
    finally:
        await engine.dispose()


def test_naive_datetimes_are_refused_by_the_column_type() -> None:
    with pytest.raises(ValueError, match="naive"):
        DateTimeUTC().process_bind_param(datetime(2030, 1, 1), sqlite.dialect())  # noqa: DTZ001


async def test_an_unreachable_database_is_database_unavailable() -> None:
    settings = fast_settings(db_pool_timeout=2)
    async with convstore.open("postgresql://nobody@127.0.0.1:1/none", settings=settings) as store:
        with pytest.raises(convstore.DatabaseUnavailable):
            await asyncio.wait_for(store.users.get_by_email("a@example.com"), 30)


async def test_pool_settings_reach_the_postgresql_engine() -> None:
    settings = fast_settings(db_pool_size=4, db_max_overflow=2, db_pool_timeout=7)
    engine = create_engine(settings, url="postgresql://app@127.0.0.1/chat")  # does not connect
    try:
        pool: Any = engine.pool
        assert (pool.size(), pool._max_overflow, pool._timeout) == (4, 2, 7)
        assert pool._pre_ping is True
        assert pool._recycle == 3600
    finally:
        await engine.dispose()
