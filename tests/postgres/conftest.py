"""PostgreSQL as deployed: one database migrated by its owner, and the API connected as the
application role (not superuser, not BYPASSRLS, owns nothing), so row-level security applies.

The fixtures are session-scoped: one database and one role for every test here. Two tenants
are seeded through the API running as the app role, with a row in every table that has a
``user_id`` (conversations and messages with tool calls, a soft-deleted conversation, tasks and
their events, a rotated refresh token, a pending password reset, an idempotency key, an API key).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

import convstore
from convstore import Store
from tests.auth.helpers import RecordingNotifier
from tests.conftest import fast_settings
from tests.http.helpers import API, Seeded, seed
from tests.support.api import api_settings, client_for, register, running_app
from tests.support.roles import Deployed, deployed_database


@pytest.fixture(scope="session")
async def deployed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployed]:
    async with deployed_database(tmp_path_factory.mktemp("deployed")) as database:
        yield database


@pytest.fixture(scope="session")
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture(scope="session")
async def rls_app(deployed: Deployed, notifier: RecordingNotifier) -> AsyncIterator[FastAPI]:
    """The API connected as the app role, as in production (no migration on start)."""
    settings = api_settings(deployed.app_url, auto_migrate=False)
    async with running_app(settings, notifier=notifier) as app:
        yield app


@pytest.fixture
async def rls_client(rls_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(rls_app) as c:
        yield c


@pytest.fixture(scope="session")
async def owner_store(deployed: Deployed) -> AsyncIterator[Store]:
    """The owner (a superuser here): sees every row, for setup and for checking."""
    async with convstore.open(deployed.owner_url, settings=fast_settings()) as store:
        yield store


@pytest.fixture(scope="session")
async def app_store(deployed: Deployed) -> AsyncIterator[Store]:
    """The library connected as the app role."""
    async with convstore.open(deployed.app_url, settings=fast_settings()) as store:
        yield store


@dataclass(frozen=True)
class Tenants:
    a: Seeded
    b: Seeded

    @property
    def a_id(self) -> uuid.UUID:
        return self.a.account.id

    @property
    def b_id(self) -> uuid.UUID:
        return self.b.account.id


async def populate(client: httpx.AsyncClient) -> Seeded:
    """A user with a row in every tenant table, made through the API as the app role."""
    account = await register(client)
    seeded = await seed(client, account)
    rotated = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert rotated.status_code == 200, rotated.text
    account.access_token = rotated.json()["access_token"]
    account.refresh_token = rotated.json()["refresh_token"]
    reset = await client.post(f"{API}/auth/password-reset/request", json={"email": account.email})
    assert reset.status_code == 202, reset.text
    keyed = await client.post(
        f"{API}/tasks",
        json={"title": "keyed"},
        headers={**account.headers, "Idempotency-Key": f"seed-{uuid.uuid4()}"},
    )
    assert keyed.status_code == 201, keyed.text
    key = await client.post(f"{API}/api-keys", json={"name": "seed"}, headers=account.headers)
    assert key.status_code == 201, key.text
    used = await client.get(
        f"{API}/tasks", headers={"Authorization": f"Bearer {key.json()['key']}"}
    )
    assert used.status_code == 200, used.text
    turn = await client.post(  # a chat turn stores its stream's frames
        f"{API}/chat/messages", json={"content": "what is left?"}, headers=account.headers
    )
    assert turn.status_code == 201, turn.text
    return seeded


@pytest.fixture(scope="session")
async def tenants(rls_app: FastAPI) -> Tenants:
    async with client_for(rls_app) as client:
        return Tenants(await populate(client), await populate(client))
