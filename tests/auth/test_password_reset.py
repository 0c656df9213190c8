"""Password reset: the same answer for every address, the token delivered through the notifier
(never for unknown addresses), single use, expiring, stored hashed only, and a reset ends every
session."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from convstore import Store
from convstore.kit.types import utc_now
from tests.auth.helpers import (
    API,
    OPAQUE_TOKEN,
    RecordingNotifier,
    assert_invalid,
    assert_unauthorized,
    expire_reset,
    login,
    me,
    refresh,
    reset_rows,
    sha256_hex,
)
from tests.support.api import Account, api_settings, client_for, register, running_app

NEW_PASSWORD = "a freshly chosen passphrase"
RESET_URL = "https://app.example/reset?token={token}"


@dataclass
class ResetApp:
    client: httpx.AsyncClient
    notifier: RecordingNotifier


@pytest.fixture
async def reset_app(database_url: str) -> AsyncIterator[ResetApp]:
    notifier = RecordingNotifier()
    settings = api_settings(database_url, password_reset_ttl_seconds=60)
    async with running_app(settings, notifier=notifier) as app, client_for(app) as c:
        yield ResetApp(c, notifier)


async def _request(c: httpx.AsyncClient, email: str) -> httpx.Response:
    return await c.post(f"{API}/password-reset/request", json={"email": email})


async def _confirm(
    c: httpx.AsyncClient, token: str, password: str = NEW_PASSWORD
) -> httpx.Response:
    return await c.post(
        f"{API}/password-reset/confirm", json={"token": token, "new_password": password}
    )


async def _token_for(ctx: ResetApp, account: Account) -> str:
    before = len(ctx.notifier.for_email(account.email))
    response = await _request(ctx.client, account.email)
    assert response.status_code == 202
    sent = ctx.notifier.for_email(account.email)
    assert len(sent) == before + 1
    return sent[-1].token


@dataclass
class Served:
    """One request served by the app: what was sent, and the SQL run before and after."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    before_response: list[str]
    in_all: list[str]


async def _serve_once(app: FastAPI, path: str, body: bytes) -> Served:
    """Call the ASGI app once, recording every SQL statement on the store's engine, and which
    of them ran before the last byte of the response was handed to the server."""
    statements: list[str] = []
    engine = app.state.store.db.engine.sync_engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()))

    messages: list[dict[str, Any]] = []
    at_response: list[str] | None = None

    async def send(message: dict[str, Any]) -> None:
        nonlocal at_response
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            at_response = list(statements)

    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("192.0.2.1", 50_000),
        "server": ("test", 80),
    }
    event.listen(engine, "before_cursor_execute", record)
    try:
        async with asyncio.timeout(10):
            await app(scope, receive, send)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    start = next(m for m in messages if m["type"] == "http.response.start")
    assert at_response is not None
    return Served(
        start["status"],
        [(k, v) for k, v in start["headers"] if k.lower() != b"x-request-id"],
        b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body"),
        at_response,
        statements,
    )


async def test_a_reset_request_does_the_same_work_for_known_and_unknown_addresses(
    database_url: str,
) -> None:
    """No enumeration oracle (ASVS 6.3.x): the answer leaves before any lookup, so the SQL run
    before the response is the same (none) for a known address and an unknown one, and the
    answers are byte for byte the same. The known address's token is made and delivered after
    the response, without the client waiting for it."""
    notifier = RecordingNotifier()
    path = f"{API}/password-reset/request"
    async with running_app(api_settings(database_url), notifier=notifier) as app:
        async with client_for(app) as c:
            account = await register(c)
        unknown_email = f"nobody-{uuid.uuid4().hex}@example.com"
        known = await _serve_once(app, path, json.dumps({"email": account.email}).encode())
        unknown = await _serve_once(app, path, json.dumps({"email": unknown_email}).encode())
    assert (known.status, known.headers, known.body) == (
        unknown.status,
        unknown.headers,
        unknown.body,
    )
    assert known.status == 202
    assert known.before_response == unknown.before_response == []
    # The deferred work did happen, after the response: a lookup on both, a token on one.
    assert any(s.startswith("SELECT") and "FROM users" in s for s in unknown.in_all)
    assert not any(s.startswith("INSERT") for s in unknown.in_all), unknown.in_all
    assert any(s.startswith("INSERT INTO password_reset_tokens") for s in known.in_all)
    assert [d.email for d in notifier.sent] == [account.email]


async def test_same_answer_for_known_and_unknown_addresses(reset_app: ResetApp) -> None:
    account = await register(reset_app.client)
    known = await _request(reset_app.client, account.email)
    unknown = await _request(reset_app.client, f"nobody-{uuid.uuid4().hex}@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert known.headers["content-type"] == unknown.headers["content-type"]
    assert [d.email for d in reset_app.notifier.sent] == [account.email]


async def test_delivery_carries_the_token_and_its_expiry(reset_app: ResetApp) -> None:
    account = await register(reset_app.client)
    # the address is matched however it is capitalised
    await _request(reset_app.client, account.email.upper())
    (delivery,) = reset_app.notifier.sent
    assert delivery.email == account.email
    assert OPAQUE_TOKEN.fullmatch(delivery.token)
    assert len(delivery.token) * 6 >= 128
    assert delivery.link is None  # no link template configured
    assert utc_now() < delivery.expires_at <= utc_now() + timedelta(seconds=61)


async def test_link_template(database_url: str) -> None:
    notifier = RecordingNotifier()
    settings = api_settings(database_url, password_reset_url=RESET_URL)
    async with running_app(settings, notifier=notifier) as app, client_for(app) as c:
        account = await register(c)
        await _request(c, account.email)
    (delivery,) = notifier.sent
    assert delivery.link == RESET_URL.replace("{token}", delivery.token)


async def test_no_delivery_for_an_account_without_a_password(
    reset_app: ResetApp, store: Store
) -> None:
    email = f"ext-{uuid.uuid4().hex[:8]}@example.com"
    await store.users.create(email=email)
    assert (await _request(reset_app.client, email)).status_code == 202
    assert reset_app.notifier.sent == []


async def test_confirm_sets_the_password_and_ends_every_session(
    reset_app: ResetApp, store: Store
) -> None:
    c = reset_app.client
    account = await register(c)
    second = (await login(c, account.email, account.password)).json()
    token = await _token_for(reset_app, account)
    done = await _confirm(c, token)
    assert done.status_code == 204, done.text
    assert (await login(c, account.email, account.password)).status_code == 401
    assert (await login(c, account.email, NEW_PASSWORD)).status_code == 200
    for raw in (account.refresh_token, second["refresh_token"]):
        assert_unauthorized(await refresh(c, raw))
    assert_unauthorized(await me(c, account.access_token))
    # single use
    assert_invalid(await _confirm(c, token, "yet another passphrase"), "token")
    assert (await login(c, account.email, NEW_PASSWORD)).status_code == 200


async def test_reset_token_is_stored_hashed_only(reset_app: ResetApp, store: Store) -> None:
    account = await register(reset_app.client)
    token = await _token_for(reset_app, account)
    (row,) = await reset_rows(store, account.id)
    assert row["token_hash"] == sha256_hex(token)
    assert all(token not in str(value) for value in row.values())
    assert row["used_at"] is None
    await _confirm(reset_app.client, token)
    (row,) = await reset_rows(store, account.id)
    assert row["used_at"] is not None


async def test_expired_token_is_refused(reset_app: ResetApp, store: Store) -> None:
    c = reset_app.client
    account = await register(c)
    token = await _token_for(reset_app, account)
    await expire_reset(store, token)
    assert_invalid(await _confirm(c, token), "token")
    assert (await login(c, account.email, account.password)).status_code == 200
    assert (await login(c, account.email, NEW_PASSWORD)).status_code == 401


async def test_unknown_token_is_refused(reset_app: ResetApp) -> None:
    assert_invalid(await _confirm(reset_app.client, "A" * 43), "token")
    assert_invalid(await _confirm(reset_app.client, "no spaces allowed here"), "token")


async def test_a_rejected_new_password_does_not_use_up_the_token(reset_app: ResetApp) -> None:
    c = reset_app.client
    account = await register(c)
    token = await _token_for(reset_app, account)
    assert_invalid(await _confirm(c, token, "password123"), "new_password")
    assert_invalid(await _confirm(c, token, "short"), "new_password")
    assert (await _confirm(c, token)).status_code == 204
    assert (await login(c, account.email, NEW_PASSWORD)).status_code == 200


async def test_a_reset_voids_the_other_pending_tokens(reset_app: ResetApp) -> None:
    c = reset_app.client
    account = await register(c)
    older = await _token_for(reset_app, account)
    newer = await _token_for(reset_app, account)
    assert older != newer
    assert (await _confirm(c, newer)).status_code == 204
    assert_invalid(await _confirm(c, older, "an attacker's passphrase"), "token")
    assert (await login(c, account.email, NEW_PASSWORD)).status_code == 200


async def test_a_password_change_voids_pending_tokens(reset_app: ResetApp) -> None:
    c = reset_app.client
    account = await register(c)
    token = await _token_for(reset_app, account)
    changed = await c.post(
        f"{API}/password/change",
        json={"current_password": account.password, "new_password": NEW_PASSWORD},
        headers=account.headers,
    )
    assert changed.status_code == 200
    assert_invalid(await _confirm(c, token, "an attacker's passphrase"), "token")


async def test_a_token_only_resets_its_own_account(reset_app: ResetApp) -> None:
    c = reset_app.client
    victim = await register(c)
    attacker = await register(c)
    token = await _token_for(reset_app, attacker)
    assert (await _confirm(c, token)).status_code == 204
    assert (await login(c, victim.email, victim.password)).status_code == 200
    assert (await login(c, attacker.email, NEW_PASSWORD)).status_code == 200
