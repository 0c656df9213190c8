"""The private SQLAlchemy and aiosqlite internals db.py reads, each behind one function: these
tests fail when a release changes one of them under convstore (see docs/performance.md for why
each is worth it)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import asyncpg
import pytest
from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.exc import DBAPIError

import convstore
from convstore import Store
from convstore.conversations.models import Message
from convstore.db import (
    DriverStatement,
    SQLiteSteps,
    bind_processors_of,
    in_one_hop,
    raise_adapted,
    raw_connection,
    result_columns_of,
    run_on_thread,
    sqlite_read,
    transaction_begun,
)
from convstore.kit.types import DateTimeUTC
from convstore.users.models import User
from convstore.users.schemas import UserRead

messages = cast(Table, Message.__table__)
users = cast(Table, User.__table__)
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
    columns = {key: proc for key, _, proc in result_columns_of(compiled, dialect)}
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


def _renaming() -> DriverStatement:
    return DriverStatement(
        update(users)
        .where(users.c.id == bindparam("uid"))
        .values(name=bindparam("new_name"), updated_at=users.c.updated_at)
    )


def _sqlite_only(store: Store) -> None:
    if store.db.dialect != "sqlite":
        pytest.skip("aiosqlite only")


async def test_work_runs_on_the_aiosqlite_thread_after_what_is_queued(store: Store) -> None:
    _sqlite_only(store)
    async with store.db.read() as conn:
        driver = (await raw_connection(conn)).driver_connection
        queued = asyncio.ensure_future(driver.execute_fetchall("SELECT 1"))
        await asyncio.sleep(0)
        ran = await run_on_thread(driver, lambda: (threading.get_ident(), queued.done()))
        assert ran[0] != threading.get_ident()
        assert (await queued) == [(1,)]
        # The driver's own sqlite3 connection is the one its thread runs statements on.
        assert await run_on_thread(driver, lambda: driver._conn.execute("SELECT 2").fetchone()) == (
            2,
        )


async def test_one_hop_is_atomic_on_a_connection_without_a_transaction(
    store: Store, user: UserRead
) -> None:
    _sqlite_only(store)
    touch = _renaming()
    broken = DriverStatement(text("INSERT INTO no_such_table VALUES (1)"))

    def work(steps: SQLiteSteps) -> None:
        steps.fetch(touch, {"uid": user.id, "new_name": "changed"})
        steps.fetch(broken, {})

    async with store.db.write_statement() as conn:
        with pytest.raises(DBAPIError) as failed:
            await in_one_hop(conn, work)
        assert "no_such_table" in failed.value.statement
        driver = (await raw_connection(conn)).driver_connection
        assert driver.in_transaction is False
    assert (await store.users.get(user.id)).name == user.name


async def test_one_hop_runs_inside_a_transaction_already_begun(
    store: Store, user: UserRead
) -> None:
    _sqlite_only(store)
    touch = _renaming()
    seen: list[bool] = []

    async def rename_then_fail() -> None:
        async with store.db.write() as conn:
            await in_one_hop(
                conn, lambda steps: steps.fetch(touch, {"uid": user.id, "new_name": "x"})
            )
            seen.append((await raw_connection(conn)).driver_connection.in_transaction)
            raise RuntimeError("the caller's transaction rolls the unit back")

    with pytest.raises(RuntimeError):
        await rename_then_fail()
    assert seen == [True]  # the unit left the caller's transaction open
    assert (await store.users.get(user.id)).name == user.name


def test_sqlite_conversions_are_sqlalchemys(store: Store) -> None:
    """The faster SQLite conversions of DriverStatement give what SQLAlchemy's processors
    give, value for value."""
    _sqlite_only(store)
    dialect = _dialect(store)
    columns = [messages.c.id, messages.c.parent_id, messages.c.tool_calls, messages.c.created_at]
    stmt = select(*columns).where(messages.c.created_at < bindparam("at", type_=DateTimeUTC))
    plan = DriverStatement(stmt).plan(dialect)
    ours = dict(plan.processed)
    theirs = {c.name: c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns}
    for text_ in ("0190a1b2c3d4e5f60718293a4b5c6d7e", "0190a1b2-c3d4-e5f6-0718-293a4b5c6d7e"):
        for _ in range(2):  # the second time from the column's memo
            assert ours["id"](text_) == theirs["id"](text_)
            assert ours["parent_id"](None) is theirs["parent_id"](None) is None
    for stored in ('[{"id": "c1"}]', "null", None, 7):
        assert ours["tool_calls"](stored) == theirs["tool_calls"](stored)
    (bind,) = (proc for name, proc in plan.binds if name == "at")
    public = DateTimeUTC().dialect_impl(dialect).bind_processor(dialect)
    east = timezone(timedelta(hours=5, minutes=30))
    for moment in (NOW, NOW.replace(microsecond=123), datetime(999, 1, 1, tzinfo=east), NOW):
        assert bind(moment) == public(moment)
    with pytest.raises(ValueError, match="naive"):
        bind(NOW.replace(tzinfo=None))


async def _read_thread(store: Store) -> int:
    """The thread a hot read of ``store`` runs its statement on."""
    async with store.db.read() as conn:
        driver = (await raw_connection(conn)).driver_connection
        await run_on_thread(
            driver, lambda: driver._conn.create_function("tid", 0, threading.get_ident)
        )
        ((ident,),) = await sqlite_read(driver, "SELECT tid()", [])
        return int(ident)


async def test_hot_reads_run_on_the_calling_thread_of_a_file_database(store: Store) -> None:
    _sqlite_only(store)
    assert await _read_thread(store) == threading.get_ident()


async def test_an_in_memory_database_reads_on_the_driver_thread() -> None:
    # Its units share one connection, whose thread may be running another unit meanwhile.
    async with convstore.open("sqlite://", migrate=True) as memory:
        assert await _read_thread(memory) != threading.get_ident()


async def test_reads_on_the_calling_thread_do_not_wait_and_the_drivers_thread_does(
    store: Store,
) -> None:
    """A read on the calling thread runs with ``busy_timeout`` 0 (it must never hold the event
    loop); whatever runs on the driver's thread next waits for SQLite's lock as configured."""
    _sqlite_only(store)
    configured = store.settings.sqlite_busy_timeout_ms
    assert configured > 0
    async with store.db.read() as conn:
        driver = (await raw_connection(conn)).driver_connection
        for _ in range(2):
            assert await sqlite_read(driver, "PRAGMA busy_timeout", []) == [(0,)]
            assert await sqlite_read(driver, "PRAGMA busy_timeout", []) == [(0,)]
            assert await driver.execute_fetchall("PRAGMA busy_timeout") == [(configured,)]
            on_thread = await run_on_thread(
                driver, lambda: driver._conn.execute("PRAGMA busy_timeout").fetchall()
            )
            assert on_thread == [(configured,)]
