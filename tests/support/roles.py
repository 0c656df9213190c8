"""PostgreSQL as deployed: the schema migrated by its owner, the API connected as a separate
login role that is neither superuser nor BYPASSRLS and owns nothing (docs/operations.md,
"PostgreSQL roles and row-level security").

Roles are cluster-wide, so each run makes its own (``convstore_test_app_<random>``): a role left
behind by a crashed run never collides with the next one. The role is dropped after its database.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from convstore import Settings, migrate
from convstore.db import create_engine
from convstore.models import Base
from tests.support.databases import PG_ADMIN_URL, fresh_database, plain

ROLE_PREFIX = "convstore_test_app_"
TENANT_TABLES = sorted(t.name for t in Base.metadata.sorted_tables if "user_id" in t.c)
"""Every table with a ``user_id`` column (a new one is picked up on its own)."""


@dataclass(frozen=True)
class Deployed:
    """One migrated database and the two ways into it."""

    owner_url: str
    """The superuser that ran the migrations (owns the tables): for setup and inspection."""
    app_url: str
    """The application role: row-level security applies to it."""
    role: str

    @property
    def owner_dsn(self) -> str:
        return plain(self.owner_url)

    @property
    def app_dsn(self) -> str:
        return plain(self.app_url)


@contextlib.asynccontextmanager
async def deployed_database(directory: Path) -> AsyncIterator[Deployed]:
    """A fresh database migrated to head, with a fresh app role granted by ``db grant``."""
    role = f"{ROLE_PREFIX}{uuid.uuid4().hex[:12]}"
    created = False
    try:
        async with fresh_database("postgresql", directory) as url:
            await _admin(
                f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'
            )
            created = True
            engine = create_engine(Settings(env="test"), url=url, pooled=False)
            try:
                await migrate.upgrade(engine, "head")
                await migrate.grant(engine, role)
            finally:
                await engine.dispose()
            app_url = make_url(url).set(username=role, password=None)
            yield Deployed(url, app_url.render_as_string(hide_password=False), role)
    finally:
        if created:  # after its database is gone: nothing refers to the role any more
            await _admin(f'DROP ROLE IF EXISTS "{role}"')


async def _admin(statement: str) -> None:
    admin = await asyncpg.connect(plain(PG_ADMIN_URL))
    try:
        await admin.execute(statement)
    finally:
        await admin.close()
