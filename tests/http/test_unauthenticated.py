"""Every route that needs a user answers 401 (problem + ``WWW-Authenticate``) without one; the
list of routes comes from ``app.routes``."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.http.helpers import assert_problem, problem_operations, sample_body

BAD_CREDENTIALS = {
    "no header": {},
    "empty bearer": {"Authorization": "Bearer "},
    "not a JWT": {"Authorization": "Bearer not-a-token"},
    "basic scheme": {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
}


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
async def test_authenticated_routes_answer_401(
    app: FastAPI, client: httpx.AsyncClient, credentials: str
) -> None:
    protected = [op for op in problem_operations(app) if op.needs_auth]
    assert len(protected) >= 20
    failures = []
    for op in protected:
        response = await client.request(
            op.method,
            op.random_url(),
            json=sample_body(op.body_model),
            headers=BAD_CREDENTIALS[credentials],
        )
        try:
            assert_problem(response, 401, "invalid_credentials")
            assert response.headers["www-authenticate"].startswith("Bearer")
        except (AssertionError, KeyError) as exc:
            failures.append(f"{op}: {exc!r}")
    assert not failures, "\n".join(failures)


async def test_public_routes_do_not_ask_for_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    login = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "x" * 12}
    )
    assert_problem(login, 401, "invalid_credentials")  # wrong credentials, not "no token"
