"""Row-level security holds on its own, and everything still works under it.

- Raw SQL as the app role acting for B: every SELECT, UPDATE and DELETE of A's rows, in every
  table with a ``user_id``, touches 0 rows; inserting a row for A, or moving one of B's rows to
  A, is refused by the policies' WITH CHECK.
- Through the store and the API, a write the policies refuse is a 404, never a 500; a route
  that forgets the application's user filter (a deliberately broken probe) leaks nothing.
- The API connected as the app role serves every flow (accounts, sessions, password reset,
  conversations, messages, tasks, a chat turn, idempotent creates, account deletion), and the
  cross-tenant matrix of ``tests/http/test_tenancy.py`` passes against it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

import convstore
from convstore import Store
from convstore.app import create_app
from convstore.http.deps import CurrentUser, WriteConn
from convstore.tasks.schemas import TaskCreate, TaskRead
from convstore.tasks.service import task as task_service
from tests.auth.helpers import (
    JwksServer,
    RecordingNotifier,
    RsaKey,
    external_claims,
    me,
    refresh,
)
from tests.http.helpers import (
    API,
    api_snapshot,
    assert_no_internals,
    assert_problem,
    db_snapshot,
    operations,
    owned_tables,
    seed,
)
from tests.http.test_tenancy import PROBE_PATH, bola_matrix, leaky_probe, matrix_operations
from tests.postgres.conftest import Tenants
from tests.support.api import PASSWORD, Account, api_settings, client_for, register, running_app
from tests.support.roles import TENANT_TABLES, Deployed

pytestmark = pytest.mark.postgres

SET_TENANT = "SELECT set_config('convstore.user_id', $1, true)"


@pytest.fixture
async def conns(deployed: Deployed) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    owner = await asyncpg.connect(deployed.owner_dsn)
    app = await asyncpg.connect(deployed.app_dsn)
    try:
        yield owner, app
    finally:
        await app.close()
        await owner.close()


async def _owned(owner: asyncpg.Connection, table: str, user_id: uuid.UUID) -> list[Any]:
    return [
        tuple(r)
        for r in await owner.fetch(f"SELECT * FROM {table} WHERE user_id = $1 ORDER BY id", user_id)
    ]


async def _acting_for(conn: asyncpg.Connection, user_id: uuid.UUID, sql: str, *args: Any) -> None:
    async with conn.transaction():
        await conn.execute(SET_TENANT, str(user_id))
        await conn.execute(sql, *args)


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_acting_for_b_no_statement_reaches_a_row_of_a(
    conns: tuple[asyncpg.Connection, asyncpg.Connection], tenants: Tenants, table: str
) -> None:
    owner, app = conns
    a, b = tenants.a_id, tenants.b_id
    before = await _owned(owner, table, a)
    assert before, f"seed a row of {table}"
    sample = await owner.fetchrow(f"SELECT * FROM {table} WHERE user_id = $1 LIMIT 1", a)
    assert sample is not None

    async with app.transaction():
        await app.execute(SET_TENANT, str(b))
        assert await app.fetchval(f"SELECT count(*) FROM {table} WHERE user_id = $1", a) == 0
        assert await app.fetchval(f"SELECT count(*) FROM {table} WHERE id = $1", sample["id"]) == 0
        assert await app.fetchval(f"SELECT count(*) FROM {table} WHERE user_id = $1", b) > 0
        touched = await app.execute(f"UPDATE {table} SET user_id = user_id WHERE user_id = $1", a)
        assert touched == "UPDATE 0"
        assert await app.execute(f"DELETE FROM {table} WHERE id = $1", sample["id"]) == "DELETE 0"

    planted = dict(sample)
    planted["id"] = uuid.uuid4()
    columns = list(planted)
    insert = (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))})"
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await _acting_for(app, b, insert, *planted.values())
    move = f"UPDATE {table} SET user_id = $1 WHERE user_id = $2"  # B's own rows, to A
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await _acting_for(app, b, move, a, b)

    assert await _owned(owner, table, a) == before


async def test_a_write_the_policies_refuse_is_not_found_through_the_store(
    app_store: Store, owner_store: Store, tenants: Tenants
) -> None:
    a, b = tenants.a_id, tenants.b_id
    before = await db_snapshot(owner_store, a)
    with pytest.raises(convstore.NotFound):
        async with app_store.writing(b) as conn:  # a service called with the wrong user
            await task_service.create(conn, a, TaskCreate(title="planted"))
    assert await db_snapshot(owner_store, a) == before
    # …while the same call for the acting user works.
    async with app_store.writing(b) as conn:
        created = await task_service.create(conn, b, TaskCreate(title="mine"))
    assert created.title == "mine"


async def planting_route(
    owner: uuid.UUID, body: TaskCreate, user: CurrentUser, conn: WriteConn
) -> TaskRead:
    """Deliberately broken: creates the task for whoever the query names."""
    return await task_service.create(conn, owner, body)


async def test_routes_that_forget_the_user_filter_leak_nothing(
    deployed: Deployed, owner_store: Store
) -> None:
    app = create_app(api_settings(deployed.app_url, auto_migrate=False))
    app.add_api_route(PROBE_PATH, leaky_probe, methods=["GET"], summary="probe")
    app.add_api_route(f"{API}/plant", planting_route, methods=["POST"], summary="plant")
    async with app.router.lifespan_context(app), client_for(app) as client:
        owner = await seed(client, await register(client))
        intruder = await seed(client, await register(client))
        before = await db_snapshot(owner_store, owner.account.id)

        probes = [op for op in operations(app) if op.path == PROBE_PATH]
        covered, findings, checked = await bola_matrix(client, probes, owner, intruder)
        assert covered == {("GET", PROBE_PATH)}
        assert checked >= 2
        assert not findings, "\n".join(map(str, findings))  # leaks on SQLite; not under RLS

        planted = await client.post(
            f"{API}/plant",
            params={"owner": str(owner.account.id)},
            json={"title": "planted"},
            headers=intruder.account.headers,
        )
        assert_problem(planted, 404, "not_found")
        assert_no_internals(planted)
        assert await db_snapshot(owner_store, owner.account.id) == before


# ---- every flow under row-level security ----------------------------------------------------


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.url, response.text)
    return response.json() if response.content else None


async def test_every_flow_works_as_the_app_role(
    rls_client: httpx.AsyncClient, notifier: RecordingNotifier, owner_store: Store
) -> None:
    c = rls_client
    account = await register(c)  # register + login
    h = account.headers
    me = await _ok(await c.get(f"{API}/auth/me", headers=h))
    assert me["email"] == account.email

    pair = await _ok(
        await c.post(f"{API}/auth/refresh", json={"refresh_token": account.refresh_token})
    )
    h = {"Authorization": f"Bearer {pair['access_token']}"}
    reused = await c.post(f"{API}/auth/refresh", json={"refresh_token": account.refresh_token})
    assert reused.status_code == 200  # the grace window returns the same child
    assert reused.json()["refresh_token"] == pair["refresh_token"]

    conv = await _ok(await c.post(f"{API}/conversations", json={"title": "t"}, headers=h), 201)
    cid = conv["id"]
    msg = await _ok(
        await c.post(
            f"{API}/conversations/{cid}/messages",
            json={"role": "user", "content": "hello"},
            headers=h,
        ),
        201,
    )
    child = {"role": "assistant", "content": "hey", "parent_id": msg["id"]}
    url = f"{API}/conversations/{cid}/messages"
    assert (await _ok(await c.post(url, json=child, headers=h), 201))["seq"] == 2
    orphan = {**child, "parent_id": str(uuid.uuid4())}
    assert (await c.post(url, json=orphan, headers=h)).status_code == 422
    await _ok(
        await c.delete(
            f"{url}/{(await _ok(await c.get(url, headers=h)))['items'][1]['id']}", headers=h
        ),
        204,
    )
    await _ok(
        await c.patch(
            f"{API}/conversations/{cid}/messages/{msg['id']}", json={"content": "hi"}, headers=h
        )
    )
    page = await _ok(await c.get(f"{API}/conversations/{cid}/messages", headers=h))
    assert [m["content"] for m in page["items"]] == ["hi"]
    await _ok(await c.patch(f"{API}/conversations/{cid}", json={"title": "u"}, headers=h))
    assert (await _ok(await c.get(f"{API}/conversations", headers=h)))["items"][0]["id"] == cid

    key = {"Idempotency-Key": f"flow-{uuid.uuid4()}"}
    first = await c.post(f"{API}/tasks", json={"title": "once"}, headers={**h, **key})
    again = await c.post(f"{API}/tasks", json={"title": "once"}, headers={**h, **key})
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    tid = first.json()["id"]
    await _ok(await c.post(f"{API}/tasks/{tid}/complete", headers=h))
    events = await _ok(await c.get(f"{API}/tasks/{tid}/events", headers=h))
    assert [e["action"] for e in events] == ["created", "completed"]

    reply = await _ok(
        await c.post(f"{API}/chat/messages", json={"content": "add buy milk"}, headers=h), 201
    )
    assert reply["status"] == "complete", reply
    titles = {t["title"] for t in (await _ok(await c.get(f"{API}/tasks", headers=h)))["items"]}
    assert {"once", "buy milk"} <= {title.lower() for title in titles}

    await _ok(await c.delete(f"{API}/conversations/{cid}/messages/{msg['id']}", headers=h), 204)
    await _ok(await c.delete(f"{API}/conversations/{cid}", headers=h), 204)
    await _ok(await c.post(f"{API}/conversations/{cid}/restore", headers=h))
    await _ok(await c.delete(f"{API}/tasks/{tid}", headers=h), 204)

    # Password reset: the token finds its user; every session ends.
    await _ok(
        await c.post(f"{API}/auth/password-reset/request", json={"email": account.email}), 202
    )
    (delivery,) = notifier.for_email(account.email)
    new_password = "a different long passphrase"
    await _ok(
        await c.post(
            f"{API}/auth/password-reset/confirm",
            json={"token": delivery.token, "new_password": new_password},
        ),
        204,
    )
    assert (await c.get(f"{API}/auth/me", headers=h)).status_code == 401
    login = await c.post(
        f"{API}/auth/login", json={"email": account.email, "password": new_password}
    )
    tokens = await _ok(login)
    h = {"Authorization": f"Bearer {tokens['access_token']}"}
    changed = await c.post(
        f"{API}/auth/password/change",
        json={"current_password": new_password, "new_password": PASSWORD},
        headers=h,
    )
    tokens = await _ok(changed)
    h = {"Authorization": f"Bearer {tokens['access_token']}"}
    await _ok(await c.post(f"{API}/auth/logout", headers=h), 204)
    assert (await c.get(f"{API}/auth/me", headers=h)).status_code == 401

    tokens = await _ok(
        await c.post(f"{API}/auth/login", json={"email": account.email, "password": PASSWORD})
    )
    h = {"Authorization": f"Bearer {tokens['access_token']}"}
    await _ok(
        await c.request("DELETE", f"{API}/auth/me", json={"current_password": PASSWORD}, headers=h),
        204,
    )
    left = await db_snapshot(owner_store, account.id)
    assert all(rows == [] for rows in left.values()), left  # the cascade ran under RLS


async def test_the_cross_tenant_matrix_passes_as_the_app_role(
    rls_app: FastAPI, rls_client: httpx.AsyncClient, owner_store: Store
) -> None:
    alice: Account = await register(rls_client)
    bob: Account = await register(rls_client)
    owner = await seed(rls_client, alice)
    intruder = await seed(rls_client, bob)
    before_api = await api_snapshot(rls_client, alice)
    before_db = await db_snapshot(owner_store, alice.id)
    ops = operations(rls_app)

    covered, findings, checked = await bola_matrix(rls_client, ops, owner, intruder)

    assert not findings, "\n".join(map(str, findings))
    assert covered == matrix_operations(ops)
    assert len(covered) >= 14
    assert checked >= 2 * len(covered)
    assert await api_snapshot(rls_client, alice) == before_api
    assert await db_snapshot(owner_store, alice.id) == before_db


async def test_external_identities_work_as_the_app_role(deployed: Deployed) -> None:
    issuer, audience, key = "https://idp.rls.test", "convstore-rls", RsaKey.generate("k1")
    with JwksServer([key]) as jwks:
        settings = api_settings(
            deployed.app_url,
            auto_migrate=False,
            external_issuer=issuer,
            external_audience=audience,
            external_jwks_url=jwks.url,
        )
        async with running_app(settings) as app, client_for(app) as c:
            bearer_token = key.sign(external_claims(issuer, audience))
            first_sight = await me(c, bearer_token)  # provisions the user
            assert first_sight.status_code == 200, first_sight.text
            exchanged = await c.post(
                f"{API}/auth/external",
                json={"id_token": key.sign(external_claims(issuer, audience))},
            )
            pair = await _ok(exchanged)
            assert (await refresh(c, pair["refresh_token"])).status_code == 200
            mine = await c.post(
                f"{API}/tasks",
                json={"title": "external"},
                headers={"Authorization": f"Bearer {bearer_token}"},
            )
            assert mine.status_code == 201, mine.text


async def test_the_admin_routes_work_as_the_app_role(
    rls_client: httpx.AsyncClient, owner_store: Store
) -> None:
    """Disabling revokes the account's refresh tokens, which are under row-level security: the
    change runs in a transaction acting for that account, not for the admin."""
    c = rls_client
    admin, bob = await register(c), await register(c)
    await owner_store.users.update(admin.id, role="admin")
    users = f"{API}/admin/users"
    listed = await _ok(
        await c.get(users, params={"email_prefix": bob.email}, headers=admin.headers)
    )
    assert [u["id"] for u in listed["items"]] == [str(bob.id)]
    assert (await _ok(await c.get(f"{users}/{bob.id}", headers=admin.headers)))["is_active"]

    off = await _ok(await c.post(f"{users}/{bob.id}/disable", headers=admin.headers))

    assert off["is_active"] is False
    assert (await c.get(f"{API}/auth/me", headers=bob.headers)).status_code == 401
    refresh = await c.post(f"{API}/auth/refresh", json={"refresh_token": bob.refresh_token})
    assert refresh.status_code == 401
    revoked = await db_snapshot(owner_store, bob.id)
    assert revoked["refresh_tokens"]
    at = [c.name for c in owned_tables()["refresh_tokens"].c].index("revoked_at")
    assert all(row[at] is not None for row in revoked["refresh_tokens"])
    assert (await _ok(await c.post(f"{users}/{bob.id}/enable", headers=admin.headers)))["is_active"]
    login = {"email": bob.email, "password": bob.password}
    assert (await c.post(f"{API}/auth/login", json=login)).status_code == 200
