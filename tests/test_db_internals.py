"""The private SQLAlchemy internals db.py reads, each behind one function: these tests fail
when a SQLAlchemy release changes one of them under convstore (see docs/performance.md for why
each is worth it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import pytest
from sqlalchemy import Table, bindparam, select, text

from convstore import Store
from convstore.conversations.models import Message
from convstore.db import (
    bind_processors_of,
    raise_adapted,
    raw_connection,
    result_columns_of,
    transaction_begun,
)
from convstore.kit.types import DateTimeUTC

messages = cast(Table, Message.__table__)
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _dialect(store: Store) -> Any:
    return store.db.engine.dialect


def test_bind_processors_are_those_sqlalchemy_applies(store: Store) -> None:
    stmt = select(messages.c.id).where(messages.c.created_at < bindparam("at", type_=DateTimeUTC))
    compiled = stmt.compile(dialect=_dialect(store))
    processors = bind_processors_of(compiled)
    assert set(processors) <= set(compiled.binds)
    dialect = _dialect(store)
    ours, public = processors.get("at"), DateTimeUTC().dialect_impl(dialect).bind_processor(dialect)
    assert (ours is None) == (public is None)
    if store.db.dialect == "sqlite":  # aware UTC in, naive text out
        assert ours is not None
        assert ours(NOW) == public(NOW) == "2026-01-02 03:04:05.000000"


def test_result_columns_are_keyed_and_processed_as_sqlalchemy_does(store: Store) -> None:
    dialect = _dialect(store)
    compiled = select(messages.c.id, messages.c.created_at, messages.c.seq).compile(dialect=dialect)
    columns = dict(result_columns_of(compiled, dialect))
    assert list(columns) == ["id", "created_at", "seq"]
    ours = columns["created_at"]
    theirs = messages.c.created_at.type._cached_result_processor(dialect, None)
    assert (ours is None) == (theirs is None)
    if store.db.dialect == "sqlite":  # naive text in, aware UTC out
        assert ours is not None
        assert ours("2026-01-02 03:04:05.000000") == NOW


async def test_a_driver_error_is_raised_as_the_dbapi_one(store: Store) -> None:
    async with store.db.read() as conn:
        raw = await raw_connection(conn)
        driver = raw.driver_connection
        try:
            if store.db.dialect == "postgresql":
                await driver.fetch("SELECT 1/0")
            else:
                await driver.execute_fetchall("SELECT * FROM no_such_table")
        except Exception as error:
            with pytest.raises(_dialect(store).loaded_dbapi.Error) as adapted:
                raise_adapted(raw.dbapi_connection, error)
        else:
            pytest.fail("the statement did not fail")
    if store.db.dialect == "postgresql":
        assert adapted.value.sqlstate == "22012"  # division_by_zero


async def test_the_adapter_says_when_its_transaction_has_begun(store: Store) -> None:
    if store.db.dialect != "postgresql":
        pytest.skip("SQLite sends convstore's own BEGIN when the transaction starts")
    async with store.db.write() as conn:
        raw = await raw_connection(conn)
        assert transaction_begun(raw) is False
        await conn.execute(text("SELECT 1"))
        assert transaction_begun(raw) is True


async def test_the_asyncpg_ping_asks_the_driver_without_a_round_trip(store: Store) -> None:
    if store.db.dialect != "postgresql":
        pytest.skip("asyncpg only")
    dialect = _dialect(store)
    async with store.db.read() as conn:
        raw = await raw_connection(conn)
        assert dialect.do_ping(raw.dbapi_connection) is True
        driver: asyncpg.Connection = raw.driver_connection
        calls: list[str] = []
        driver.add_query_logger(lambda record: calls.append(record.query))
        assert dialect.do_ping(raw.dbapi_connection) is True
        assert calls == []
    # SQLAlchemy's pre-ping on checkout still goes through the dialect's do_ping.
    assert store.settings.db_pool_pre_ping
    seen: list[object] = []
    original = dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        seen.append(dbapi_connection)
        return bool(original(dbapi_connection))

    dialect.do_ping = counting
    try:
        async with store.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        dialect.do_ping = original
    assert seen
