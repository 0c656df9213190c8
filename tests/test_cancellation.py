"""Cancelled work gives its connection back with no transaction open, whatever ``await`` the
cancellation hits: AnyIO's (cancelled again at every ``await``, as Starlette cancels a response
whose client went away), a one-shot ``task.cancel()`` and ``asyncio.timeout``.

Before the fix, on SQLite, a cancellation inside a statement made SQLAlchemy terminate the
connection, and aiosqlite's close raced its own thread ("Task was destroyed but it is pending!
… _terminate_graceful_close"): a connection could stay open in its transaction and hold the
write lock for good.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import asyncpg
import pytest

import convstore
from convstore import Store, UserScope
from convstore.db import sqlite_path
from tests.conftest import fast_settings
from tests.factories import make_user
from tests.support.databases import plain

OFFSETS = range(0, 24)
"""Loop iterations before the cancellation: together they land on every ``await`` of the
work below (a unit of work takes 2–12 iterations on either database)."""


async def _work(me: UserScope, conversation_id: Any) -> None:
    await me.messages.append(conversation_id, role="user", content="hello")
    await me.tasks.create(title="buy milk", tags=["home"])
    await me.messages.append_many(
        conversation_id,
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
    )
    await me.tasks.list(tag="home")
    await me.messages.history(conversation_id, limit=10)


async def _cancel_with_anyio(work: Callable[[], Awaitable[None]], after: int) -> None:
    async with anyio.create_task_group() as group:
        scope = anyio.CancelScope()

        async def victim() -> None:
            with scope:
                await work()

        group.start_soon(victim)
        for _ in range(after):
            await asyncio.sleep(0)
        scope.cancel()


async def _cancel_task(work: Callable[[], Awaitable[None]], after: int) -> None:
    task = asyncio.ensure_future(work())
    for _ in range(after):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _time_out(work: Callable[[], Awaitable[None]], after: int) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(after * 0.0002):
            await work()

    await asyncio.gather(bounded(), return_exceptions=True)


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What the event loop reports to its exception handler during the test (a task
    destroyed while pending, an exception nobody retrieved)."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
    finally:
        gc.collect()
        loop.set_exception_handler(previous)


async def _assert_nothing_left_open(store: Store, url: str) -> None:
    if store.db.dialect == "sqlite":
        path = sqlite_path(store.db.engine.url)
        assert path is not None
        other = sqlite3.connect(path, timeout=0.5)
        try:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" if a transaction stayed
            other.execute("ROLLBACK")
        finally:
            other.close()
    else:
        admin = await asyncpg.connect(plain(url))
        try:
            idle = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%'"
            )
        finally:
            await admin.close()
        assert idle == 0
    assert store.db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("cancel", [_cancel_with_anyio, _cancel_task, _time_out])
async def test_cancelled_work_gives_its_connection_back(
    database_url: str, cancel: Callable[..., Awaitable[None]], loop_errors: list[dict[str, Any]]
) -> None:
    settings = fast_settings(db_pool_size=2, db_max_overflow=0, db_pool_timeout=5.0)
    async with convstore.open(database_url, settings=settings) as store:
        me = store.for_user((await make_user(store)).id)
        conv = await me.conversations.create(title="cancelled")
        for after in OFFSETS:
            await cancel(lambda: _work(me, conv.id), after)
        await _assert_nothing_left_open(store, database_url)

        # Every transaction committed whole or not at all: the counter matches the rows.
        history = await me.messages.history(conv.id, limit=1000)
        assert [m.seq for m in history] == list(range(1, len(history) + 1))
        assert (await me.conversations.get(conv.id)).messages_count == len(history)
        assert await store.accepts_writes(2.0)
        await _work(me, conv.id)  # and the store still works
    gc.collect()
    destroyed = [c for c in loop_errors if "destroyed but it is pending" in str(c.get("message"))]
    assert destroyed == []
