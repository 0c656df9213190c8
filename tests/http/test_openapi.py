"""The OpenAPI document describes every route the app serves (built from ``app.routes``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from convstore.app import create_app
from tests.http.helpers import API, PROBLEM_JSON, Operation, operations, problem_operations
from tests.support.api import api_settings, client_for

PROBLEM_REF = "#/components/schemas/Problem"


def _problem_documented(responses: dict[str, Any], status: int) -> bool:
    documented = responses.get(str(status))
    if documented is None:
        return False
    schema = documented.get("content", {}).get(PROBLEM_JSON, {}).get("schema", {})
    return bool(schema.get("$ref") == PROBLEM_REF)


def problems_of(op: Operation, operation: dict[str, Any]) -> list[str]:
    """What the document fails to say about ``op``."""
    problems = []
    if not operation.get("summary"):
        problems.append("no summary")
    if not operation.get("description"):
        problems.append("no description")
    if op.body_model is not None:
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if not body or not body.get("schema"):
            problems.append("request body schema not declared")
    responses = operation.get("responses", {})
    success = responses.get(str(op.success_status))
    if success is None:
        problems.append(f"{op.success_status} not documented")
    elif op.success_status != 204:
        if not success.get("content", {}).get("application/json", {}).get("schema"):
            problems.append("response schema not declared")
    expected = set()
    if op.needs_auth:
        expected |= {401, 429}
    if op.id_params:
        expected.add(404)
    if op.body_model is not None or op.query_params or op.path_params:
        expected.add(422)
    missing = sorted(s for s in expected if not _problem_documented(responses, s))
    if missing:
        problems.append(f"problems not documented: {missing}")
    if op.needs_auth and not operation.get("security"):
        problems.append("no security requirement")
    return problems


async def test_openapi_describes_every_route(app: FastAPI, client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    problem = doc["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    failures: list[str] = []
    ops = problem_operations(app)
    assert len(ops) >= 30
    for op in ops:
        operation = doc["paths"].get(op.path, {}).get(op.method.lower())
        if operation is None:
            failures.append(f"{op}: missing")
        elif problems := problems_of(op, operation):
            failures.append(f"{op}: {', '.join(problems)}")
    assert not failures, "\n".join(failures)

    login = doc["paths"][f"{API}/auth/login"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(login)
    readyz = doc["paths"]["/readyz"]["get"]["responses"]
    assert "503" in readyz


async def test_openapi_has_no_undeclared_paths(app: FastAPI, client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    served = {(op.method.lower(), op.path) for op in operations(app)}
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert documented == served


async def test_docs_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


CONFLICTS = frozenset(
    {
        ("POST", f"{API}/auth/register"),
        ("PATCH", f"{API}/auth/me"),
        ("POST", f"{API}/conversations/{{conversation_id}}/messages"),
    }
)
"""Operations that answer 409 besides the ones taking an ``Idempotency-Key`` (a taken email,
a tool call answered twice)."""


async def test_openapi_documents_conflicts_and_undecodable_bodies(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """409 where a write can collide (register's taken email among them), and on every route
    reading a JSON body a 422 that says a body not UTF-8 or nested too deep is one too."""
    doc = (await client.get("/openapi.json")).json()
    failures = []
    for op in problem_operations(app):
        responses = doc["paths"][op.path][op.method.lower()]["responses"]
        key = (op.method, op.path)
        if (key in CONFLICTS or "idempotency-key" in op.header_params) and not (
            _problem_documented(responses, 409)
        ):
            failures.append(f"{op}: 409 not documented")
        reads_body = op.body_model is not None or key == ("POST", f"{API}/auth/login")
        if reads_body:
            described = responses.get("422", {}).get("description", "")
            if not ("UTF-8" in described and "64 levels" in described):
                failures.append(f"{op}: the 422 does not mention undecodable bodies")
    assert not failures, "\n".join(failures)
    assert len([op for op in problem_operations(app) if (op.method, op.path) in CONFLICTS]) == 3


@pytest.mark.parametrize(
    ("env", "api_docs", "served"),
    [
        ("production", None, False),
        ("production", True, True),
        ("development", None, True),
        ("development", False, False),
    ],
)
async def test_the_api_documents_are_off_in_production_unless_turned_on(
    tmp_path: Path, env: str, api_docs: bool | None, served: bool
) -> None:
    """``/docs``, ``/redoc`` and ``/openapi.json`` map the whole API for whoever asks: off by
    default in production (``CONVSTORE_API_DOCS`` turns them on), on elsewhere. (The app is
    not started: these routes need no database.)"""
    overrides: dict[str, Any] = {"env": env}
    if api_docs is not None:
        overrides["api_docs"] = api_docs
    app = create_app(api_settings(f"sqlite:///{tmp_path / 'unused.db'}", **overrides))
    async with client_for(app) as c:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
            response = await c.get(path)
            assert response.status_code == (200 if served else 404), (path, response.text)
        assert (await c.get("/healthz")).status_code == 200
