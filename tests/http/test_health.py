"""Liveness and readiness probes, with a reachable and an unreachable database."""

from __future__ import annotations

import httpx

from tests.http.helpers import API, assert_no_internals, assert_problem
from tests.support.api import PASSWORD, api_settings, client_for, running_app

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


async def test_probes_answer(client: httpx.AsyncClient) -> None:
    live = await client.get("/healthz")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_readiness_fails_cleanly_without_a_database() -> None:
    settings = api_settings(UNREACHABLE, auto_migrate=False, db_pool_timeout=2)
    async with running_app(settings) as app, client_for(app) as c:  # the lifespan starts
        assert (await c.get("/healthz")).status_code == 200
        ready = await c.get("/readyz")
        assert_problem(ready, 503, "database_unavailable")
        assert_no_internals(ready)
        # Routes that need the database answer 503 too, never a 500 with details.
        register = await c.post(
            f"{API}/auth/register", json={"email": "down@example.com", "password": PASSWORD}
        )
        assert_problem(register, 503, "database_unavailable")
        assert_no_internals(register)
        assert "127.0.0.1" not in register.text
        assert "nobody" not in register.text
