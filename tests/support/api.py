"""HTTP test helpers: an app per database, clients, and signed-in accounts."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from convstore import Settings
from convstore.app import create_app

PASSWORD = "a long passphrase for tests"
TEST_SECRET = "test-secret-key-of-at-least-thirty-two-bytes!"
_counter = itertools.count(1)


def api_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for an app under test: fast Argon2, a fixed secret, generous rate limits."""
    values: dict[str, Any] = {
        "env": "test",
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "password_hash_time_cost": 2,
        "password_hash_memory_kib": 19_456,
        "password_hash_parallelism": 1,
        "rate_limit_user": "100000/minute",
        "rate_limit_auth_ip": "100000/minute",
        "rate_limit_login_account": "100000/minute",
        "rate_limit_login_account_failures": "100000/hour",
        "rate_limit_chat": "100000/minute",
    }
    values.update(overrides)
    return Settings.model_validate(values)


def build_app(settings: Settings, **kwargs: Any) -> FastAPI:
    """The app as ``convstore serve`` builds it, its lifespan not entered (for a caller that runs
    the app on an event loop of its own, such as schemathesis' ASGI transport)."""
    return create_app(settings, **kwargs)


@contextlib.asynccontextmanager
async def running_app(settings: Settings, **kwargs: Any) -> AsyncIterator[FastAPI]:
    """An app with its lifespan entered (the store open, the database migrated)."""
    app = build_app(settings, **kwargs)
    async with app.router.lifespan_context(app):
        yield app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@dataclass
class Account:
    """A registered, signed-in user."""

    id: uuid.UUID
    email: str
    password: str
    access_token: str
    refresh_token: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register(
    client: httpx.AsyncClient, *, password: str = PASSWORD, email: str | None = None
) -> Account:
    """Register and sign in through the API."""
    email = email or f"api{next(_counter)}-{uuid.uuid4().hex[:8]}@example.com"
    created = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password}
    )
    assert created.status_code == 201, created.text
    tokens = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return Account(
        uuid.UUID(created.json()["id"]),
        email,
        password,
        body["access_token"],
        body["refresh_token"],
    )
