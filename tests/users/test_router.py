"""The admin API (``/api/v1/admin/users``) on SQLite and PostgreSQL: an admin lists, reads,
disables and enables accounts, and can do nothing else to them. What a non-admin sees of these
routes is checked with the cross-tenant matrix (``tests/http/test_tenancy.py``)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from convstore import Store
from tests.http.helpers import API, assert_problem, created, error_fields
from tests.support.api import Account, register

USERS = f"{API}/admin/users"
USER_FIELDS = {
    "id",
    "email",
    "name",
    "role",
    "auth_provider",
    "is_active",
    "created_at",
    "updated_at",
}


@pytest.fixture
async def admin(client: httpx.AsyncClient, store: Store) -> Account:
    account = await register(client)
    await store.users.update(account.id, role="admin")
    return account


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _pages(
    client: httpx.AsyncClient, admin: Account, **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every user of the admin list with ``params``, and how many pages it took."""
    users: list[dict[str, Any]] = []
    query: dict[str, Any] = dict(params)
    for pages in range(1, 100):
        response = await client.get(USERS, params=query, headers=admin.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        users.extend(page["items"])
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return users, pages
        query["cursor"] = page["next_cursor"]
    raise AssertionError("the list never ended")


async def test_the_list_pages_through_matching_accounts_oldest_first(
    client: httpx.AsyncClient, admin: Account
) -> None:
    tag = uuid.uuid4().hex[:8]
    accounts = [await register(client, email=f"list-{tag}-{i}@example.com") for i in range(5)]

    users, pages = await _pages(client, admin, limit=2, email_prefix=f"LIST-{tag}-")

    assert [u["email"] for u in users] == [a.email for a in accounts]
    assert pages == 3
    assert all(set(u) == USER_FIELDS for u in users), users
    assert all(u["is_active"] and u["role"] == "user" for u in users)


async def test_the_email_prefix_is_taken_literally(
    client: httpx.AsyncClient, admin: Account
) -> None:
    tag = uuid.uuid4().hex[:8]
    await register(client, email=f"lit-{tag}-a@example.com")
    for wildcard in (f"lit_{tag}", f"lit-{tag}%", "%", "_"):
        users, _ = await _pages(client, admin, email_prefix=wildcard)
        assert users == [], wildcard
    users, _ = await _pages(client, admin, email_prefix=f"lit-{tag}-a@example.com")
    assert len(users) == 1


async def test_the_list_filters_by_state_and_binds_its_cursor(
    client: httpx.AsyncClient, admin: Account
) -> None:
    tag = uuid.uuid4().hex[:8]
    accounts = [await register(client, email=f"state-{tag}-{i}@example.com") for i in range(3)]
    off = await client.post(f"{USERS}/{accounts[1].id}/disable", headers=admin.headers)
    assert off.status_code == 200, off.text
    prefix = f"state-{tag}-"

    disabled, _ = await _pages(client, admin, email_prefix=prefix, is_active="false")
    active, _ = await _pages(client, admin, email_prefix=prefix, is_active="true")

    assert [u["email"] for u in disabled] == [accounts[1].email]
    assert [u["email"] for u in active] == [accounts[0].email, accounts[2].email]
    first = await client.get(
        USERS, params={"limit": 1, "email_prefix": prefix}, headers=admin.headers
    )
    cursor = first.json()["next_cursor"]
    other_filters = await client.get(
        USERS, params={"cursor": cursor, "is_active": "true"}, headers=admin.headers
    )
    assert error_fields(other_filters) == ["cursor"]
    for bad in ("x", "e30", cursor[:-2]):
        refused = await client.get(
            USERS, params={"cursor": bad, "email_prefix": prefix}, headers=admin.headers
        )
        assert error_fields(refused) == ["cursor"], bad


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"is_active": "perhaps"}, "is_active"),
        ({"email_prefix": ""}, "email_prefix"),
        ({"email_prefix": "a\u0000b"}, "email_prefix"),
        ({"email_prefix": "x" * 321}, "email_prefix"),
    ],
)
async def test_bad_list_parameters_name_their_field(
    client: httpx.AsyncClient, admin: Account, params: dict[str, Any], field: str
) -> None:
    response = await client.get(USERS, params=params, headers=admin.headers)
    assert error_fields(response) == [field], response.text


async def test_one_account_never_shows_a_password_hash(
    client: httpx.AsyncClient, admin: Account, bob: Account
) -> None:
    one = await client.get(f"{USERS}/{bob.id}", headers=admin.headers)
    assert one.status_code == 200, one.text
    assert set(one.json()) == USER_FIELDS
    assert one.json()["email"] == bob.email
    assert "argon2" not in one.text
    assert "password" not in one.text
    missing = await client.get(f"{USERS}/{uuid.uuid4()}", headers=admin.headers)
    assert assert_problem(missing, 404, "not_found")["detail"] == "user not found"
    assert error_fields(await client.get(f"{USERS}/not-an-id", headers=admin.headers)) == [
        "user_id"
    ]
    for action in ("disable", "enable"):
        gone = await client.post(f"{USERS}/{uuid.uuid4()}/{action}", headers=admin.headers)
        assert_problem(gone, 404, "not_found")


async def test_disabling_refuses_every_credential_at_the_next_request(
    client: httpx.AsyncClient, admin: Account, bob: Account
) -> None:
    key = await client.post(f"{API}/api-keys", json={"name": "bot"}, headers=bob.headers)
    assert key.status_code == 201, key.text
    bob_key = _auth(key.json()["key"])
    assert (await client.get(f"{API}/auth/me", headers=bob_key)).status_code == 200

    off = await client.post(f"{USERS}/{bob.id}/disable", headers=admin.headers)

    assert off.status_code == 200, off.text
    assert off.json()["is_active"] is False
    assert off.json()["id"] == str(bob.id)
    for headers in (bob.headers, bob_key):
        assert_problem(await client.get(f"{API}/tasks", headers=headers), 401)
    refresh = await client.post(f"{API}/auth/refresh", json={"refresh_token": bob.refresh_token})
    assert_problem(refresh, 401)
    login = {"email": bob.email, "password": bob.password}
    assert_problem(await client.post(f"{API}/auth/login", json=login), 401)
    again = await client.post(f"{USERS}/{bob.id}/disable", headers=admin.headers)
    assert again.status_code == 200
    assert again.json()["is_active"] is False

    on = await client.post(f"{USERS}/{bob.id}/enable", headers=admin.headers)

    assert on.status_code == 200
    assert on.json()["is_active"] is True
    assert (await client.post(f"{API}/auth/login", json=login)).status_code == 200
    old = await client.post(f"{API}/auth/refresh", json={"refresh_token": bob.refresh_token})
    assert_problem(old, 401)  # sessions ended by the disabling stay ended
    assert_problem(await client.get(f"{API}/tasks", headers=bob.headers), 401)
    assert (await client.get(f"{API}/tasks", headers=bob_key)).status_code == 200


async def test_an_admin_cannot_disable_themselves(
    client: httpx.AsyncClient, store: Store, admin: Account
) -> None:
    refused = await client.post(f"{USERS}/{admin.id}/disable", headers=admin.headers)

    assert (
        assert_problem(refused, 409, "conflict")["detail"] == "you cannot disable your own account"
    )
    assert (await store.users.get(admin.id)).is_active
    assert (await client.get(USERS, params={"limit": 1}, headers=admin.headers)).status_code == 200
    enabled = await client.post(f"{USERS}/{admin.id}/enable", headers=admin.headers)
    assert enabled.status_code == 200
    assert enabled.json()["is_active"] is True


async def test_an_admin_reads_no_one_elses_data(
    client: httpx.AsyncClient, admin: Account, bob: Account
) -> None:
    conversation = await created(client, bob, f"{API}/conversations", {"title": "private"})
    task = await created(client, bob, f"{API}/tasks", {"title": "private"})
    for path in (f"conversations/{conversation}", f"conversations/{conversation}/messages"):
        assert_problem(await client.get(f"{API}/{path}", headers=admin.headers), 404)
    assert_problem(await client.get(f"{API}/tasks/{task}", headers=admin.headers), 404)
    listed = await client.get(f"{API}/conversations", headers=admin.headers)
    assert conversation not in {c["id"] for c in listed.json()["items"]}


async def test_an_admin_api_key_is_refused_and_a_demotion_is_immediate(
    client: httpx.AsyncClient, store: Store, admin: Account, bob: Account
) -> None:
    key = await client.post(f"{API}/api-keys", json={"name": "ops"}, headers=admin.headers)
    admin_key = _auth(key.json()["key"])
    for method, path in (("GET", USERS), ("POST", f"{USERS}/{bob.id}/disable")):
        response = await client.request(method, path, headers=admin_key)
        assert_problem(response, 403, "permission_denied")
    assert (await store.users.get(bob.id)).is_active

    await store.users.update(admin.id, role="user")

    unknown = await client.get(f"{API}/no-such-path", headers=admin.headers)
    demoted = await client.get(USERS, headers=admin.headers)
    assert demoted.status_code == 404
    assert demoted.content == unknown.content
    assert_problem(await client.get(USERS), 401)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def audit_records() -> Iterator[list[logging.LogRecord]]:
    """What ``convstore.audit`` logs (its own handler: ``convstore`` may not propagate)."""
    logger, handler = logging.getLogger("convstore.audit"), _Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_disable_and_enable_write_one_audit_line_each(
    client: httpx.AsyncClient,
    admin: Account,
    bob: Account,
    audit_records: list[logging.LogRecord],
) -> None:
    await client.post(f"{USERS}/{bob.id}/disable", headers=admin.headers)
    await client.post(f"{USERS}/{bob.id}/enable", headers=admin.headers)
    await client.post(f"{USERS}/{admin.id}/disable", headers=admin.headers)  # 409: no line
    await client.post(f"{USERS}/{uuid.uuid4()}/disable", headers=admin.headers)  # 404: no line

    lines = [
        (r.getMessage(), r.__dict__["audit"], r.__dict__["target_user_id"]) for r in audit_records
    ]
    assert lines == [
        (f"admin {admin.id} disabled user {bob.id}", "user.disable", str(bob.id)),
        (f"admin {admin.id} enabled user {bob.id}", "user.enable", str(bob.id)),
    ]
    assert all(r.__dict__["admin_id"] == str(admin.id) for r in audit_records)
