"""Row-level security, checked in the catalog and failing closed.

The catalog is checked mechanically, as Supabase's splinter lints it: every table with a
``user_id`` column has ENABLE and FORCE ROW LEVEL SECURITY, every policy compares with a
transaction setting through ``NULLIF`` (an unset setting matches nothing) and none has an
``IS NULL OR`` escape; the app role is an ordinary role that owns nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.postgres.conftest import Tenants
from tests.support.roles import TENANT_TABLES, Deployed

pytestmark = pytest.mark.postgres

TOKEN_TABLES = {
    "refresh_tokens": "token_hash",
    "password_reset_tokens": "token_hash",
    "api_keys": "key_hash",
}
"""The tables a token's hash opens one row of, and the column it is compared with."""
TENANT_GUC = "current_setting('convstore.user_id'::text, true)"
TOKEN_GUC = "current_setting('convstore.token_hash'::text, true)"
NULL_ESCAPE = re.compile(r"IS\s+NULL\s*\)*\s+OR", re.IGNORECASE)


async def _connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def owner(deployed: Deployed) -> AsyncIterator[asyncpg.Connection]:
    async for conn in _connected(deployed.owner_dsn):
        yield conn


@pytest.fixture
async def app_conn(deployed: Deployed) -> AsyncIterator[asyncpg.Connection]:
    async for conn in _connected(deployed.app_dsn):
        yield conn


async def test_every_table_with_a_user_id_forces_row_level_security(
    owner: asyncpg.Connection,
) -> None:
    rows = await owner.fetch(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               EXISTS (SELECT 1 FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attname = 'user_id'
                         AND NOT a.attisdropped) AS has_user_id
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
        """
    )
    tables = {r["relname"]: r for r in rows}
    with_user_id = sorted(name for name, r in tables.items() if r["has_user_id"])
    assert with_user_id == TENANT_TABLES  # the catalog and the models agree
    unprotected = [name for name in with_user_id if not (tables[name]["relrowsecurity"])] + [
        name for name in with_user_id if not tables[name]["relforcerowsecurity"]
    ]
    assert unprotected == []
    # The tenant table itself stays outside (docs/schema.md, "Row-level security").
    assert not tables["users"]["relrowsecurity"]


async def test_every_policy_fails_closed(owner: asyncpg.Connection) -> None:
    policies = await owner.fetch(
        """
        SELECT tablename, policyname, permissive, roles, cmd, qual, with_check
        FROM pg_policies WHERE schemaname = current_schema()
        ORDER BY tablename, policyname
        """
    )
    found = {(p["tablename"], p["policyname"]): p for p in policies}
    expected = {(t, "tenant_isolation") for t in TENANT_TABLES}
    expected |= {(t, "token_lookup") for t in TOKEN_TABLES}
    assert set(found) == expected
    for (table, name), p in found.items():
        assert p["permissive"] == "PERMISSIVE", (table, name)
        assert list(p["roles"]) == ["public"], (table, name)
        texts = [p["qual"]] + ([p["with_check"]] if p["with_check"] is not None else [])
        for text in texts:
            assert not NULL_ESCAPE.search(text), (table, name, text)
            assert " OR " not in text.upper(), (table, name, text)
            assert "NULLIF(current_setting(" in text, (table, name, text)
        if name == "tenant_isolation":
            assert p["cmd"] == "ALL", (table, name)
            assert p["qual"] == p["with_check"], (table, name)
            assert p["qual"].startswith(f"(user_id = (NULLIF({TENANT_GUC}"), p["qual"]
        else:  # knowing a token opens its row for reading, never for writing
            assert p["cmd"] == "SELECT", (table, name)
            assert p["with_check"] is None
            column = TOKEN_TABLES[table]
            assert p["qual"].startswith(f"(({column})::text = NULLIF({TOKEN_GUC}"), p["qual"]


async def test_the_app_role_is_ordinary_and_owns_nothing(
    owner: asyncpg.Connection, deployed: Deployed
) -> None:
    role = await owner.fetchrow(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
        "WHERE rolname = $1",
        deployed.role,
    )
    assert role is not None
    assert dict(role) == {
        "rolsuper": False,
        "rolbypassrls": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
    }
    owned = await owner.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE r.rolname = $1",
        deployed.role,
    )
    assert owned == 0
    memberships = await owner.fetchval(
        "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
        "WHERE r.rolname = $1",
        deployed.role,
    )
    assert memberships == 0
    for table in TENANT_TABLES:
        for privilege, held in (("SELECT", True), ("DELETE", True), ("TRUNCATE", False)):
            assert (
                await owner.fetchval(
                    "SELECT has_table_privilege($1, $2, $3)", deployed.role, table, privilege
                )
                is held
            ), (table, privilege)
    assert not await owner.fetchval(
        "SELECT has_table_privilege($1, 'alembic_version', 'UPDATE')", deployed.role
    )


async def test_no_view_or_definer_function_goes_around_the_policies(
    owner: asyncpg.Connection,
) -> None:
    views = await owner.fetch(
        """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind IN ('v', 'm')
          AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
        """
    )
    assert [v["relname"] for v in views] == []
    definers = await owner.fetch(
        """
        SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = current_schema() AND p.prosecdef
          AND NOT coalesce(array_to_string(p.proconfig, ',') LIKE '%search_path=%', false)
        """
    )
    assert [d["proname"] for d in definers] == []


# ---- A6: fail closed ----------------------------------------------------------------------------


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TENANT_TABLES}


async def _set_then_abort(conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
    async with conn.transaction():
        await conn.execute("SELECT set_config('convstore.user_id', $1, true)", str(user_id))
        raise RuntimeError("abort")


async def test_without_a_tenant_the_app_role_sees_no_row(
    app_conn: asyncpg.Connection, owner: asyncpg.Connection, tenants: Tenants
) -> None:
    nothing = dict.fromkeys(TENANT_TABLES, 0)
    assert all(count > 0 for count in (await _counts(owner)).values())  # the rows exist

    # A fresh session: the setting was never defined.
    async with app_conn.transaction():
        assert await app_conn.fetchval("SELECT current_setting('convstore.user_id', true)") is None
        assert await _counts(app_conn) == nothing
    assert await _counts(app_conn) == nothing  # outside a transaction too

    # A committed transaction that named a user leaves '' behind, which matches nothing.
    async with app_conn.transaction():
        await app_conn.execute(
            "SELECT set_config('convstore.user_id', $1, true)", str(tenants.a_id)
        )
        assert all(count > 0 for count in (await _counts(app_conn)).values())
    assert await app_conn.fetchval("SELECT current_setting('convstore.user_id', true)") == ""
    async with app_conn.transaction():
        assert await _counts(app_conn) == nothing

    # So does a rolled-back one, and an explicitly empty or unknown user.
    with pytest.raises(RuntimeError):
        await _set_then_abort(app_conn, tenants.b_id)
    assert await _counts(app_conn) == nothing
    for value in ("", str(uuid.uuid4())):
        async with app_conn.transaction():
            await app_conn.execute("SELECT set_config('convstore.user_id', $1, true)", value)
            assert await _counts(app_conn) == nothing


async def test_a_token_setting_opens_only_that_token_and_only_for_reading(
    app_conn: asyncpg.Connection, owner: asyncpg.Connection, tenants: Tenants
) -> None:
    token_hash = await owner.fetchval(
        "SELECT token_hash FROM refresh_tokens WHERE user_id = $1 LIMIT 1", tenants.a_id
    )
    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('convstore.token_hash', $1, true)", token_hash)
        assert await app_conn.fetchval("SELECT count(*) FROM refresh_tokens") == 1
        assert await app_conn.fetchval("SELECT count(*) FROM password_reset_tokens") == 0
        assert await app_conn.fetchval("SELECT count(*) FROM api_keys") == 0
        assert await app_conn.fetchval("SELECT count(*) FROM conversations") == 0
        updated = await app_conn.execute(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = $1", token_hash
        )
        assert updated == "UPDATE 0"
        assert await app_conn.execute("DELETE FROM refresh_tokens") == "DELETE 0"


async def test_a_key_hash_opens_only_that_api_key_and_only_for_reading(
    app_conn: asyncpg.Connection, owner: asyncpg.Connection, tenants: Tenants
) -> None:
    key_hash = await owner.fetchval(
        "SELECT key_hash FROM api_keys WHERE user_id = $1 LIMIT 1", tenants.a_id
    )
    assert key_hash is not None
    async with app_conn.transaction():
        await app_conn.execute("SELECT set_config('convstore.token_hash', $1, true)", key_hash)
        assert await app_conn.fetchval("SELECT count(*) FROM api_keys") == 1
        assert await app_conn.fetchval("SELECT count(*) FROM refresh_tokens") == 0
        assert await app_conn.fetchval("SELECT count(*) FROM tasks") == 0
        updated = await app_conn.execute(
            "UPDATE api_keys SET last_used_at = now() WHERE key_hash = $1", key_hash
        )
        assert updated == "UPDATE 0"
        assert await app_conn.execute("DELETE FROM api_keys") == "DELETE 0"
