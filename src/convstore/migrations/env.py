"""Alembic environment: compares against ``convstore.models`` and runs on the connection that
``convstore.migrate`` hands over (or on ``CONVSTORE_DATABASE_URL`` when run by plain alembic)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from convstore.config import get_settings
from convstore.db import create_engine
from convstore.models import Base

target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=True,
    )


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_standalone())


async def _run_standalone() -> None:
    engine = create_engine(get_settings(), pooled=False)
    async with engine.connect() as conn:
        await conn.run_sync(_run_sync)
        await conn.commit()
    await engine.dispose()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("convstore migrations run online only: convstore db upgrade")
run_migrations_online()
