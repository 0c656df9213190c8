"""Shared fixtures. Every data test runs twice: on SQLite and on PostgreSQL.

Tests stay independent by owning their data: each one makes its own users (random emails), and
nothing in convstore can reach another user's rows. The databases are built by the migrations
(``alembic upgrade head``), never by ``create_all``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

import convstore
from convstore import Settings, Store, UserScope
from convstore.users.schemas import UserRead
from tests.factories import make_user
from tests.support.api import Account, api_settings, client_for, register, running_app
from tests.support.databases import fresh_database

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def fast_settings(**overrides: object) -> Settings:
    """Settings for tests: Argon2 at OWASP's floor (m=19 MiB, t=2, p=1) to keep tests quick."""
    values: dict[str, object] = {
        "env": "test",
        "password_hash_time_cost": 2,
        "password_hash_memory_kib": 19_456,
        "password_hash_parallelism": 1,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return fast_settings()


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated database shared by the session's tests of one backend."""
    async with fresh_database(request.param, tmp_path_factory.mktemp("db")) as url:
        async with convstore.open(url, settings=fast_settings(), migrate=True):
            pass
        yield url


@pytest.fixture(scope="session")
async def store(database_url: str, settings: Settings) -> AsyncIterator[Store]:
    async with convstore.open(database_url, settings=settings) as opened:
        yield opened


@pytest.fixture
def backend(store: Store) -> str:
    """``sqlite`` or ``postgresql``."""
    return store.db.dialect


@pytest.fixture
async def user(store: Store) -> UserRead:
    return await make_user(store)


@pytest.fixture
async def other_user(store: Store) -> UserRead:
    return await make_user(store)


@pytest.fixture
def me(store: Store, user: UserRead) -> UserScope:
    return store.for_user(user.id)


@pytest.fixture
def them(store: Store, other_user: UserRead) -> UserScope:
    return store.for_user(other_user.id)


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    """The API over the session's database of each backend."""
    async with running_app(api_settings(database_url)) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Account:
    return await register(client)


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> Account:
    return await register(client)
