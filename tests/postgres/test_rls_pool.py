"""No tenant setting survives its transaction on a pooled connection.

One pooled connection (``pool_size=1, max_overflow=0``) serves an interleaving of A, B and
anonymous operations through the library, as the app role: plain reads and writes, operations
that raise halfway through their transaction, and operations cancelled while their statement
runs. Right before each ``set_config`` the store issues, an event hook reads the setting on the
same connection: it must be unset (NULL) or empty, never another user's id. Anonymous
transactions read it too, and every result is checked for the other tenant's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event, text

import convstore
from convstore import Store, UserScope
from convstore.db import TENANT_SETTING
from convstore.users.schemas import UserRead
from tests.conftest import fast_settings
from tests.support.roles import Deployed

pytestmark = pytest.mark.postgres

OPERATIONS = 10_000
CANCEL_EVERY = 250
WRITE_EVERY = 25
CURRENT = text("SELECT current_setting('convstore.user_id', true)")


class Boom(Exception):
    """Raised inside a transaction on purpose."""


@dataclass
class Workload:
    """Two users' operations on one store, and what they observed."""

    store: Store
    users: list[UserRead]
    owned: list[set[uuid.UUID]] = field(default_factory=lambda: [set(), set()])
    at_start: list[Any] = field(default_factory=list)
    anonymous_values: list[Any] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    def scope(self, who: int) -> UserScope:
        return self.store.for_user(self.users[who].id)

    def watch(self) -> None:
        """Read the setting on the connection right before each ``set_config`` of the user."""

        @event.listens_for(self.store.db.engine.sync_engine, "before_cursor_execute")
        def _before(_conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            if "set_config" in statement and TENANT_SETTING in tuple(params or ()):
                cursor.execute("SELECT current_setting('convstore.user_id', true)")
                self.at_start.append(cursor.fetchone()[0])

    async def listing(self, who: int) -> None:
        scope = self.scope(who)
        ids = {c.id for c in (await scope.conversations.list(limit=100)).items}
        ids |= {t.id for t in (await scope.tasks.list(limit=100)).items}
        if ids & self.owned[1 - who] or not ids & self.owned[who]:
            self.leaks.append(f"user {who} listed {ids}")

    async def inside(self, who: int) -> None:
        async with self.store.reading(self.users[who].id) as conn:
            value = (await conn.execute(CURRENT)).scalar()
            owners = set((await conn.execute(text("SELECT user_id FROM tasks"))).scalars())
        if value != str(self.users[who].id) or owners != {self.users[who].id}:
            self.leaks.append(f"user {who} saw {value} and {owners}")

    async def write(self, who: int) -> None:
        task = await self.scope(who).tasks.create(title="more")
        self.owned[who].add(task.id)
        await self.scope(who).tasks.complete(task.id)

    async def foreign(self, who: int) -> None:
        other = next(iter(self.owned[1 - who]))
        with contextlib.suppress(convstore.NotFound):
            await self.scope(who).tasks.get(other)
            self.leaks.append(f"user {who} read {other}")

    async def raising(self, who: int) -> None:
        with contextlib.suppress(Boom):
            async with self.store.writing(self.users[who].id) as conn:
                await conn.execute(text("SELECT count(*) FROM conversations"))
                raise Boom

    async def cancelled(self, who: int) -> None:
        async def slow() -> None:
            async with self.store.reading(self.users[who].id) as conn:
                await conn.execute(text("SELECT pg_sleep(0.05)"))

        running = asyncio.create_task(slow())
        await asyncio.sleep(0.01)  # inside the statement
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    async def anonymous(self, _: int) -> None:
        for begin in (self.store.reading, self.store.writing):
            async with begin() as conn:
                self.anonymous_values.append((await conn.execute(CURRENT)).scalar())
                count = (await conn.execute(text("SELECT count(*) FROM tasks"))).scalar()
            if count:
                self.leaks.append(f"anonymous saw {count} tasks")

    def operation(self, i: int) -> Callable[[int], Awaitable[None]]:
        if i % CANCEL_EVERY == 0:
            return self.cancelled
        if i % WRITE_EVERY == 0:
            return self.write
        ops = [self.listing, self.inside, self.foreign, self.raising, self.anonymous]
        return ops[i % len(ops)]


async def test_no_tenant_setting_leaks_across_a_pooled_connection(deployed: Deployed) -> None:
    settings = fast_settings(db_pool_size=1, db_max_overflow=0, db_pool_timeout=30)
    async with convstore.open(deployed.app_url, settings=settings) as store:
        users = [await store.users.create(email=f"a7-{uuid.uuid4().hex}@x.example") for _ in "ab"]
        work = Workload(store, users)
        for who in (0, 1):
            conv = await work.scope(who).conversations.create(title="mine")
            task = await work.scope(who).tasks.create(title="mine")
            work.owned[who].update({conv.id, task.id})
        work.watch()

        started = time.monotonic()
        for i in range(OPERATIONS):
            await work.operation(i)((i // 2) % 2)  # A, A, B, B, A, …
        elapsed = time.monotonic() - started

        assert work.leaks == []
        assert len(work.at_start) > OPERATIONS // 2
        assert set(work.at_start) <= {None, ""}
        assert set(work.anonymous_values) <= {None, ""}
        assert store.db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        print(  # noqa: T201 - the figures of the run, shown with -s
            f"A7: {OPERATIONS} operations, {len(work.at_start)} tenant transactions checked, "
            f"{len(work.anonymous_values)} anonymous, in {elapsed:.1f} s"
        )
