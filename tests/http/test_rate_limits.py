"""Rate limits: per signed-in user, and per client IP on the auth
routes. One past the limit is a 429 problem with an integer ``Retry-After``."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from tests.http.helpers import API, assert_problem
from tests.support.api import PASSWORD, Account, api_settings, client_for, register, running_app


def _client(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def assert_rate_limited(response: httpx.Response) -> int:
    assert_problem(response, 429, "rate_limited")
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= 60
    return int(retry_after)


async def test_per_user_limit(database_url: str) -> None:
    settings = api_settings(database_url, rate_limit_user="5/minute")
    async with running_app(settings) as app, client_for(app) as c:
        alice = await register(c)
        bob = await register(c)
        for _ in range(5):
            assert (await c.get(f"{API}/conversations", headers=alice.headers)).status_code == 200
        assert_rate_limited(await c.get(f"{API}/tasks", headers=alice.headers))
        assert_rate_limited(
            await c.post(f"{API}/tasks", json={"title": "x"}, headers=alice.headers)
        )
        # B shares the client address but not the budget.
        for _ in range(5):
            response = await c.post(f"{API}/tasks", json={"title": "b"}, headers=bob.headers)
            assert response.status_code == 201, response.text
        assert_rate_limited(await c.get(f"{API}/tasks", headers=bob.headers))


async def test_nothing_is_written_past_the_limit(database_url: str) -> None:
    settings = api_settings(database_url, rate_limit_user="3/minute")
    async with running_app(settings) as app, client_for(app) as c:
        user = await register(c)
        for _ in range(3):
            response = await c.post(f"{API}/tasks", json={"title": "x"}, headers=user.headers)
            assert response.status_code == 201
        assert_rate_limited(await c.post(f"{API}/tasks", json={"title": "x"}, headers=user.headers))
    async with running_app(api_settings(database_url)) as app, client_for(app) as c:
        tokens = await c.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        listed = await c.get(f"{API}/tasks", headers=headers)
        assert len(listed.json()["items"]) == 3


async def test_register_is_limited_per_ip(database_url: str) -> None:
    settings = api_settings(database_url, rate_limit_auth_ip="3/minute")
    async with running_app(settings) as app:
        async with _client(app, "10.0.0.1") as c, _client(app, "10.0.0.2") as other:

            def body() -> dict[str, str]:
                return {"email": f"rl-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD}

            for _ in range(3):
                assert (await c.post(f"{API}/auth/register", json=body())).status_code == 201
            refused = body()
            assert_rate_limited(await c.post(f"{API}/auth/register", json=refused))
            assert_rate_limited(await c.post(f"{API}/auth/login", json=refused))
            # Another address keeps its own budget; the refused account was never made.
            login = await other.post(f"{API}/auth/login", json=refused)
            assert_problem(login, 401, "invalid_credentials")
            assert (await other.post(f"{API}/auth/register", json=body())).status_code == 201


async def test_refresh_is_limited_per_ip(database_url: str, alice: Account) -> None:
    settings = api_settings(database_url, rate_limit_auth_ip="3/minute")
    async with running_app(settings) as app, _client(app, "10.0.0.3") as c:
        token = alice.refresh_token
        for _ in range(3):
            response = await c.post(f"{API}/auth/refresh", json={"refresh_token": token})
            assert response.status_code == 200, response.text
            token = response.json()["refresh_token"]
        assert_rate_limited(await c.post(f"{API}/auth/refresh", json={"refresh_token": token}))
        async with _client(app, "10.0.0.4") as other:
            fresh = await other.post(f"{API}/auth/refresh", json={"refresh_token": token})
            assert fresh.status_code == 200, fresh.text  # the 429 did not use the token up
