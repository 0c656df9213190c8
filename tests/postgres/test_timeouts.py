"""Database timeouts and pool exhaustion, as the app role.

Every connection starts with ``statement_timeout``, ``lock_timeout`` and
``idle_in_transaction_session_timeout`` (sent in the startup packet). A statement the server
cuts short is a 503 ``database_timeout`` (``DatabaseTimeout`` in the library), never a 500 with
SQL; a full pool is a 503 ``database_unavailable`` after ``pool_timeout``. Either way the
connections go back to the pool. Durations are only bounded generously ("does not hang").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

import convstore
from convstore import Store
from tests.conftest import fast_settings
from tests.http.helpers import API, assert_no_internals, assert_problem, created
from tests.support.api import Account, api_settings, client_for, register, running_app
from tests.support.roles import Deployed

pytestmark = pytest.mark.postgres

HANG = 15.0
"""Seconds after which a request counts as hanging (far above every timeout used here)."""
SHOW = "SELECT current_setting($1)"


def checked_out(store: Store) -> int:
    return int(store.db.engine.pool.checkedout())  # type: ignore[attr-defined]


async def test_every_connection_starts_with_the_timeouts(deployed: Deployed) -> None:
    async with convstore.open(deployed.app_url, settings=fast_settings()) as store:
        async with store.reading() as conn:
            values = [
                (await conn.execute(text(f"SHOW {name}"))).scalar()
                for name in (
                    "statement_timeout",
                    "lock_timeout",
                    "idle_in_transaction_session_timeout",
                )
            ]
    assert values == ["5s", "2s", "30s"]
    off = fast_settings(
        db_statement_timeout_ms=0, db_lock_timeout_ms=0, db_idle_in_transaction_timeout_ms=0
    )
    async with convstore.open(deployed.app_url, settings=off) as store:
        async with store.reading() as conn:
            assert (await conn.execute(text("SHOW statement_timeout"))).scalar() == "0"


async def test_a_statement_past_statement_timeout_is_a_database_timeout(
    deployed: Deployed,
) -> None:
    settings = fast_settings(db_statement_timeout_ms=200, db_pool_size=1, db_max_overflow=0)
    async with convstore.open(deployed.app_url, settings=settings) as store:
        started = time.monotonic()
        with pytest.raises(convstore.DatabaseTimeout) as caught:
            async with store.reading() as conn:
                await conn.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < HANG
        assert isinstance(caught.value, convstore.DatabaseUnavailable)  # retryable
        assert "pg_sleep" not in caught.value.message
        assert checked_out(store) == 0
        assert await store.ping()  # the same (only) connection serves the next call


async def test_a_transaction_left_idle_is_ended_by_the_server(deployed: Deployed) -> None:
    settings = fast_settings(
        db_idle_in_transaction_timeout_ms=200, db_pool_size=1, db_max_overflow=0
    )
    async with convstore.open(deployed.app_url, settings=settings) as store:
        user = await store.users.create(email=f"idle-{time.time_ns()}@example.com")
        with pytest.raises(convstore.DatabaseUnavailable):
            await _stall(store, user.id)
        assert checked_out(store) == 0
        task = await store.for_user(user.id).tasks.create(title="after")  # a fresh connection
        assert task.title == "after"


async def _stall(store: Store, user_id: uuid.UUID) -> None:
    """A caller that stops halfway through its transaction for longer than the idle limit."""
    async with store.writing(user_id) as conn:
        await conn.execute(text("SELECT 1"))
        await asyncio.sleep(1.0)
        await conn.execute(text("SELECT 1"))


@contextlib.asynccontextmanager
async def api(deployed: Deployed, **overrides: Any) -> AsyncIterator[tuple[FastAPI, Store]]:
    settings = api_settings(deployed.app_url, auto_migrate=False, **overrides)
    async with running_app(settings) as app:
        yield app, app.state.store


@contextlib.asynccontextmanager
async def row_locked(deployed: Deployed, conversation_id: str) -> AsyncIterator[None]:
    """Another transaction holds the conversation's row lock (as the owner, who sees it)."""
    holder = await asyncpg.connect(deployed.owner_dsn)
    try:
        async with holder.transaction():
            await holder.execute(
                "SELECT 1 FROM conversations WHERE id = $1::uuid FOR UPDATE", conversation_id
            )
            yield
    finally:
        await holder.close()


async def test_a_locked_row_fails_the_request_with_503_not_a_hang(deployed: Deployed) -> None:
    async with api(deployed, db_lock_timeout_ms=300) as (app, store), client_for(app) as c:
        alice = await register(c)
        conv = await created(c, alice, f"{API}/conversations", {"title": "t"})
        url = f"{API}/conversations/{conv}"
        async with row_locked(deployed, conv):
            started = time.monotonic()
            blocked = await c.patch(url, json={"title": "u"}, headers=alice.headers)
            assert time.monotonic() - started < HANG
            assert_problem(blocked, 503, "database_timeout")
            assert_no_internals(blocked)
            assert checked_out(store) == 0
        after = await c.patch(url, json={"title": "u"}, headers=alice.headers)
        assert after.status_code == 200, after.text
        assert checked_out(store) == 0


async def test_requests_beyond_the_pool_get_503_quickly(deployed: Deployed) -> None:
    """Two connections, ten slow requests at once (each waits for a row lock while holding a
    connection): two are served when the lock goes, the other eight get a 503 after the pool
    timeout instead of queueing behind them."""
    async with (
        api(
            deployed,
            db_pool_size=2,
            db_max_overflow=0,
            db_pool_timeout=0.5,
            db_lock_timeout_ms=0,  # the slow requests wait for the lock as long as it is held
        ) as (app, store),
        client_for(app) as c,
    ):
        alice: Account = await register(c)
        conv = await created(c, alice, f"{API}/conversations", {"title": "t"})
        url = f"{API}/conversations/{conv}"

        async def patch(i: int) -> tuple[httpx.Response, float]:
            started = time.monotonic()
            response = await c.patch(url, json={"title": f"t{i}"}, headers=alice.headers)
            return response, time.monotonic() - started

        async with row_locked(deployed, conv):
            requests = [asyncio.create_task(patch(i)) for i in range(10)]
            async with asyncio.timeout(HANG):
                while True:  # until the ones without a connection have their answer
                    if sum(r.done() for r in requests) >= 8:
                        break
                    await asyncio.sleep(0.05)
            early = [r for r in requests if r.done()]
        late = [await r for r in requests if r not in early]
        assert checked_out(store) == 0

    assert len(early) == 8
    for task in early:
        response, elapsed = task.result()
        assert_problem(response, 503, "database_unavailable")
        assert_no_internals(response)
        assert elapsed < HANG
    assert [response.status_code for response, _ in late] == [200, 200], late
