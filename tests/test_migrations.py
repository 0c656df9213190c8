"""Alembic owns the schema: upgrade, downgrade to base, upgrade again, and `db check` is clean —
on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from convstore import migrate
from convstore.db import create_engine
from convstore.models import Base
from tests.conftest import BACKENDS, fast_settings
from tests.support.databases import fresh_database

COLUMN_TYPES = """
    SELECT table_name, column_name, data_type FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name <> 'alembic_version'
"""
TABLES = sorted(t.name for t in Base.metadata.sorted_tables)


@pytest.mark.parametrize("kind", BACKENDS)
async def test_upgrade_downgrade_upgrade_round_trip(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as url:
        engine = create_engine(fast_settings(), url=url, pooled=False)
        try:
            assert await migrate.current(engine) is None
            await migrate.upgrade(engine, "head")
            assert await migrate.current(engine) == migrate.head_revision()
            assert set(TABLES) <= set(await migrate.table_names(engine))
            assert await migrate.check(engine) is None
            await migrate.downgrade(engine, "base")
            assert await migrate.current(engine) is None
            assert await migrate.table_names(engine) == ["alembic_version"]
            await migrate.upgrade(engine, "head")
            assert await migrate.check(engine) is None
        finally:
            await engine.dispose()


@pytest.mark.parametrize("kind", BACKENDS)
async def test_check_reports_a_schema_that_drifted_from_the_models(
    kind: str, tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as url:
        engine = create_engine(fast_settings(), url=url, pooled=False)
        try:
            await migrate.upgrade(engine, "head")
            async with engine.begin() as conn:
                await conn.execute(text("DROP INDEX ix_tasks_user_id_created_at_id"))
            problem = await migrate.check(engine)
            assert problem is not None
            assert "ix_tasks_user_id_created_at_id" in problem
        finally:
            await engine.dispose()


@pytest.mark.parametrize("kind", BACKENDS)
async def test_check_reports_a_database_behind_head(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as url:
        engine = create_engine(fast_settings(), url=url, pooled=False)
        try:
            problem = await migrate.check(engine)
            assert problem is not None
            assert "no revision" in problem
        finally:
            await engine.dispose()


def test_the_migration_chain_is_linear() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1
    assert [r.revision for r in script.walk_revisions()][-1] == "0001"


@pytest.mark.postgres
async def test_postgresql_column_types(tmp_path: Path) -> None:
    """JSON is JSONB, timestamps are timestamptz, keys are native UUIDs."""
    async with fresh_database("postgresql", tmp_path) as url:
        engine = create_engine(fast_settings(), url=url, pooled=False)
        try:
            await migrate.upgrade(engine, "head")
            async with engine.connect() as conn:
                rows = (await conn.execute(text(COLUMN_TYPES))).all()
        finally:
            await engine.dispose()
    types = {(t, c): d for t, c, d in rows}
    for table, column in (
        ("messages", "tool_calls"),
        ("messages", "attributes"),
        ("conversations", "attributes"),
        ("tasks", "tags"),
    ):
        assert types[(table, column)] == "jsonb"
    stamps = {d for (t, c), d in types.items() if c.endswith("_at")}
    assert stamps == {"timestamp with time zone"}
    assert {d for (t, c), d in types.items() if c == "id"} == {"uuid"}
