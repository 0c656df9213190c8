"""A real ``convstore serve`` per backend for the ``/v1`` tests, and signed-in ``openai``
clients on it: each user signs in with an API key, as a program would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.http.test_serve import start_serve, stop, wait_until_up
from tests.support.api import PASSWORD

LIVE_ENV = {
    "CONVSTORE_RATE_LIMIT_USER": "100000/minute",
    "CONVSTORE_RATE_LIMIT_AUTH_IP": "10000/minute",
    "CONVSTORE_RATE_LIMIT_LOGIN_ACCOUNT": "10000/minute",
    "CONVSTORE_ACCESS_LOG": "false",
}


def serve_for_test(directory: Path, database_url: str, **env: str) -> Iterator[str]:
    """``convstore serve`` on ``database_url`` until the generator closes; its base URL."""
    log = directory / "serve.log"
    proc, port = start_serve(
        directory, log, CONVSTORE_DATABASE_URL=database_url, **{**LIVE_ENV, **env}
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as client:
            wait_until_up(client, proc, log)
        yield base
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a ``convstore serve`` on the session's database of each backend."""
    yield from serve_for_test(tmp_path_factory.mktemp("v1"), database_url)


@dataclass
class Program:
    """A user signed in with an API key, and ``openai`` clients for ``/v1`` with that key."""

    user_id: uuid.UUID
    email: str
    api_key: str
    access_token: str
    base_url: str
    opened: list[OpenAI] = field(default_factory=list)

    def client(self, **options: Any) -> OpenAI:
        """A client for ``/v1`` with this user's key (closed with :meth:`close`)."""
        made = OpenAI(base_url=f"{self.base_url}/v1", api_key=self.api_key, **options)
        self.opened.append(made)
        return made

    def async_client(self, **options: Any) -> AsyncOpenAI:
        """An async client for ``/v1``; the caller closes it (``async with``)."""
        return AsyncOpenAI(base_url=f"{self.base_url}/v1", api_key=self.api_key, **options)

    def close(self) -> None:
        for made in self.opened:
            made.close()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def sign_up_program(base_url: str) -> Program:
    """Register a user through the API, sign in, and create an API key for a program."""
    email = f"v1-{uuid.uuid4().hex[:10]}@example.com"
    creds = {"email": email, "password": PASSWORD}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        created = http.post("/api/v1/auth/register", json=creds)
        assert created.status_code == 201, created.text
        login = http.post("/api/v1/auth/login", json=creds)
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        key = http.post(
            "/api/v1/api-keys",
            json={"name": "agent worker"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert key.status_code == 201, key.text
    return Program(uuid.UUID(created.json()["id"]), email, key.json()["key"], token, base_url)


@pytest.fixture
def program(live: str) -> Iterator[Program]:
    made = sign_up_program(live)
    yield made
    made.close()


@pytest.fixture
def other_program(live: str) -> Iterator[Program]:
    made = sign_up_program(live)
    yield made
    made.close()
