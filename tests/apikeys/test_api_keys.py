"""``/api/v1/api-keys`` and signing in with a key, through the app on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from convstore.apikeys.service import TOUCH_EVERY, hash_key
from convstore.store import Store
from tests.http.helpers import API, assert_problem
from tests.support.api import PASSWORD, Account, api_settings, client_for, register, running_app

KEYS = f"{API}/api-keys"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create_key(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    response = await client.post(KEYS, json={"name": "worker", **body}, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def stored_rows(store: Store, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's api_keys rows as stored, every column."""
    async with store.reading(user_id) as conn:
        result = await conn.execute(
            text("SELECT * FROM api_keys WHERE user_id = :u ORDER BY created_at"),
            {"u": user_id.hex if store.db.dialect == "sqlite" else user_id},
        )
        return [dict(r) for r in result.mappings()]


async def dump(store: Store, table: str) -> str:
    async with store.reading() as conn:
        rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
    return repr(rows)


def _store(app: FastAPI) -> Store:
    store: Store = app.state.store
    return store


async def test_create_list_revoke(client: httpx.AsyncClient, alice: Account, app: FastAPI) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    response = await client.post(
        KEYS,
        json={"name": "  agent worker ", "expires_at": expires.isoformat()},
        headers=alice.headers,
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    assert set(created) == {"id", "name", "key", "prefix", "created_at", "expires_at"}
    assert created["name"] == "agent worker"
    key = created["key"]
    assert key.startswith("csk_")
    assert len(key) == 4 + 43
    assert created["prefix"] == key[:12]
    assert datetime.fromisoformat(created["expires_at"]) == expires
    assert response.headers["location"] == f"{KEYS}/{created['id']}"

    listed = await client.get(KEYS, headers=alice.headers)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["has_more"] is False
    [item] = page["items"]
    assert item == {
        "id": created["id"],
        "name": "agent worker",
        "prefix": key[:12],
        "created_at": created["created_at"],
        "expires_at": created["expires_at"],
        "last_used_at": None,
    }
    assert key not in listed.text
    one = await client.get(f"{KEYS}/{created['id']}", headers=alice.headers)
    assert one.status_code == 200, one.text
    assert one.json() == item

    # Only the hash is stored: not in api_keys, nor in the idempotency table, anywhere.
    [row] = await stored_rows(_store(app), alice.id)
    assert row["key_hash"] == hash_key(key)
    assert key not in repr(row)
    secret_part = key[12:]
    for table in ("api_keys", "idempotency_keys", "refresh_tokens"):
        assert secret_part not in await dump(_store(app), table)

    assert (await client.get(f"{API}/tasks", headers=bearer(key))).status_code == 200
    revoked = await client.delete(f"{KEYS}/{created['id']}", headers=alice.headers)
    assert revoked.status_code == 204, revoked.text
    assert_problem(await client.get(f"{API}/tasks", headers=bearer(key)), 401)
    assert (await client.get(KEYS, headers=alice.headers)).json()["items"] == []
    assert_problem(await client.delete(f"{KEYS}/{created['id']}", headers=alice.headers), 404)


async def test_the_list_is_paged(client: httpx.AsyncClient, alice: Account) -> None:
    ids = [(await create_key(client, alice, name=f"k{i}"))["id"] for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(KEYS, params=params, headers=alice.headers)).json()
        seen += [item["id"] for item in page["items"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == ids


async def test_a_key_works_on_every_api_route_as_its_user(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    key = (await create_key(client, alice))["key"]
    made = await client.post(f"{API}/tasks", json={"title": "from a program"}, headers=bearer(key))
    assert made.status_code == 201, made.text
    conv = await client.post(f"{API}/conversations", json={"title": "c"}, headers=bearer(key))
    assert conv.status_code == 201, conv.text
    me = await client.get(f"{API}/auth/me", headers=bearer(key))
    assert me.status_code == 200
    assert me.json()["id"] == str(alice.id)
    mine = await client.get(f"{API}/tasks", headers=alice.headers)
    assert [t["title"] for t in mine.json()["items"]] == ["from a program"]
    assert (await client.get(f"{API}/tasks", headers=bob.headers)).json()["items"] == []
    # Another user's objects stay a 404 for the key.
    theirs = await client.post(f"{API}/tasks", json={"title": "b"}, headers=bob.headers)
    assert_problem(await client.get(f"{API}/tasks/{theirs.json()['id']}", headers=bearer(key)), 404)


async def test_managing_keys_needs_a_session(client: httpx.AsyncClient, alice: Account) -> None:
    created = await create_key(client, alice)
    h = bearer(created["key"])
    for response in (
        await client.post(KEYS, json={"name": "more"}, headers=h),
        await client.get(KEYS, headers=h),
        await client.delete(f"{KEYS}/{created['id']}", headers=h),
    ):
        body = assert_problem(response, 403, "permission_denied")
        assert "API key" in body["detail"]
    assert len((await client.get(KEYS, headers=alice.headers)).json()["items"]) == 1


async def test_a_key_cannot_end_sessions_or_change_the_account(
    client: httpx.AsyncClient, alice: Account
) -> None:
    h = bearer((await create_key(client, alice))["key"])
    for response in (
        await client.post(f"{API}/auth/logout", params={"everywhere": "true"}, headers=h),
        await client.patch(f"{API}/auth/me", json={"name": "renamed"}, headers=h),
        await client.request("DELETE", f"{API}/auth/me", json={"current_password": "x"}, headers=h),
        await client.post(
            f"{API}/auth/password/change",
            json={"current_password": "x", "new_password": "another long passphrase"},
            headers=h,
        ),
    ):
        assert_problem(response, 403, "permission_denied")
    me = await client.get(f"{API}/auth/me", headers=alice.headers)  # the session still works
    assert me.status_code == 200
    assert me.json()["name"] != "renamed"
    assert (await client.get(f"{API}/auth/me", headers=h)).status_code == 200


async def test_another_users_key_is_a_404_like_a_missing_one(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    theirs = await create_key(client, bob)
    other = assert_problem(
        await client.delete(f"{KEYS}/{theirs['id']}", headers=alice.headers), 404
    )
    missing = assert_problem(
        await client.delete(f"{KEYS}/{uuid.uuid4()}", headers=alice.headers), 404
    )
    assert other["detail"] == missing["detail"]
    seen = assert_problem(await client.get(f"{KEYS}/{theirs['id']}", headers=alice.headers), 404)
    assert seen["detail"] == missing["detail"]
    assert (await client.get(f"{API}/tasks", headers=bearer(theirs["key"]))).status_code == 200
    assert (await client.get(KEYS, headers=alice.headers)).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a\nb"}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": 5}, "name"),
        ({"name": "k", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "k", "expires_at": "2999-01-01T00:00:00"}, "expires_at"),
        ({"name": "k", "expires_at": "soon"}, "expires_at"),
        ({"name": "k", "secret": "mine"}, "secret"),
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(
    client: httpx.AsyncClient, alice: Account, app: FastAPI, body: dict[str, Any], field: str
) -> None:
    problem = assert_problem(
        await client.post(KEYS, json=body, headers=alice.headers), 422, "invalid_input"
    )
    assert [e["field"] for e in problem["errors"]] == [field], problem
    assert await stored_rows(_store(app), alice.id) == []


async def test_expired_key_is_refused(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    created = await create_key(
        client, alice, expires_at=(datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    )
    assert (await client.get(f"{API}/tasks", headers=bearer(created["key"]))).status_code == 200
    # Move the expiry into the past rather than sleeping.
    async with _store(app).writing(alice.id) as conn:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await conn.execute(
            text("UPDATE api_keys SET expires_at = :t WHERE key_hash = :h"),
            {
                "t": past
                if _store(app).db.dialect == "postgresql"
                else past.replace(tzinfo=None).isoformat(sep=" "),
                "h": hash_key(created["key"]),
            },
        )
    body = assert_problem(await client.get(f"{API}/tasks", headers=bearer(created["key"])), 401)
    assert "API key" in body["detail"]


async def test_unknown_or_malformed_keys_are_401(client: httpx.AsyncClient) -> None:
    for key in ("csk_", "csk_" + "A" * 43, "csk_a b", "csk_" + "x" * 10_000):
        assert_problem(await client.get(f"{API}/tasks", headers=bearer(key)), 401)


async def test_disabled_or_deleted_account_refuses_its_keys(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    disabled, deleted = await register(client), await register(client)
    k1 = (await create_key(client, disabled))["key"]
    k2 = (await create_key(client, deleted))["key"]
    await _store(app).users.update(disabled.id, is_active=False)
    assert_problem(await client.get(f"{API}/tasks", headers=bearer(k1)), 401)
    gone = await client.request(
        "DELETE", f"{API}/auth/me", json={"current_password": PASSWORD}, headers=deleted.headers
    )
    assert gone.status_code == 204, gone.text
    assert_problem(await client.get(f"{API}/tasks", headers=bearer(k2)), 401)
    assert await stored_rows(_store(app), deleted.id) == []


async def test_last_used_at_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    created = await create_key(client, alice)
    h = bearer(created["key"])
    assert (await client.get(f"{API}/tasks", headers=h)).status_code == 200
    [first] = (await client.get(KEYS, headers=alice.headers)).json()["items"]
    assert first["last_used_at"] is not None
    used = datetime.fromisoformat(first["last_used_at"])
    for _ in range(3):
        assert (await client.get(f"{API}/tasks", headers=h)).status_code == 200
    [again] = (await client.get(KEYS, headers=alice.headers)).json()["items"]
    assert again["last_used_at"] == first["last_used_at"]  # not rewritten within the minute
    # A minute later the next request records itself.
    store = _store(app)
    earlier = used - TOUCH_EVERY - timedelta(seconds=1)
    async with store.writing(alice.id) as conn:
        await conn.execute(
            text("UPDATE api_keys SET last_used_at = :t WHERE key_hash = :h"),
            {
                "t": earlier
                if store.db.dialect == "postgresql"
                else earlier.replace(tzinfo=None).isoformat(sep=" "),
                "h": hash_key(created["key"]),
            },
        )
    assert (await client.get(f"{API}/tasks", headers=h)).status_code == 200
    [later] = (await client.get(KEYS, headers=alice.headers)).json()["items"]
    assert datetime.fromisoformat(later["last_used_at"]) > earlier + TOUCH_EVERY


async def test_idempotent_creation_replays_the_same_key(
    client: httpx.AsyncClient, alice: Account, app: FastAPI
) -> None:
    h = {**alice.headers, "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await client.post(KEYS, json={"name": "retried"}, headers=h)
    second = await client.post(KEYS, json={"name": "retried"}, headers=h)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["cache-control"] == "no-store"
    assert second.headers["location"] == first.headers["location"]
    assert second.json() == first.json()
    assert (
        await client.get(f"{API}/tasks", headers=bearer(second.json()["key"]))
    ).status_code == 200
    assert len(await stored_rows(_store(app), alice.id)) == 1
    assert first.json()["key"][12:] not in await dump(_store(app), "idempotency_keys")
    other = await client.post(KEYS, json={"name": "different"}, headers=h)
    assert_problem(other, 422, "invalid_input")


async def test_the_per_user_cap(database_url: str) -> None:
    async with running_app(api_settings(database_url, api_keys_per_user=2)) as app:
        async with client_for(app) as c:
            alice, bob = await register(c), await register(c)
            await create_key(c, alice)
            second = await create_key(c, alice)
            assert_problem(
                await c.post(KEYS, json={"name": "third"}, headers=alice.headers), 409, "conflict"
            )
            await create_key(c, bob)  # the cap is per user
            assert (
                await c.delete(f"{KEYS}/{second['id']}", headers=alice.headers)
            ).status_code == 204
            await create_key(c, alice)


async def test_a_key_is_rate_limited_as_its_user(database_url: str) -> None:
    async with running_app(api_settings(database_url, rate_limit_user="6/minute")) as app:
        async with client_for(app) as c:
            alice = await register(c)
            key = await create_key(c, alice)  # 1
            for _ in range(3):  # 4
                assert (await c.get(f"{API}/tasks", headers=bearer(key["key"]))).status_code == 200
            for _ in range(2):  # 6
                assert (await c.get(f"{API}/tasks", headers=alice.headers)).status_code == 200
            assert_problem(await c.get(f"{API}/tasks", headers=bearer(key["key"])), 429)
            assert_problem(await c.get(f"{API}/tasks", headers=alice.headers), 429)
