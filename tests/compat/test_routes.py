"""Every ``/v1`` route, from ``app.routes``: the checks tests/http makes of the problem API,
against OpenAI's error body. Without a valid key: a 401; an undecodable or over-specified body:
a 400 naming its ``param``, nothing written; the OpenAPI document describes each route and its
errors. (The cross-tenant matrix of tests/http/test_tenancy.py covers these routes as well.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from convstore import Store
from tests.http.helpers import (
    OPENAI_PREFIX,
    Operation,
    assert_no_internals,
    db_snapshot,
    operations,
    sample_body,
    seed,
)
from tests.http.test_errors import SERVER_OWNED, UNDECODABLE_BODIES
from tests.http.test_unauthenticated import BAD_CREDENTIALS
from tests.support.api import Account


def v1_operations(app: FastAPI) -> list[Operation]:
    ops = [op for op in operations(app) if op.path.startswith(OPENAI_PREFIX)]
    assert len(ops) == 9, [str(op) for op in ops]
    return ops


def openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """``response`` is OpenAI's error body with ``status``; its ``error`` member."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
async def test_every_route_answers_401_without_a_key(
    app: FastAPI, client: httpx.AsyncClient, credentials: str
) -> None:
    failures = []
    for op in v1_operations(app):
        response = await client.request(
            op.method,
            op.random_url(),
            json=sample_body(op.body_model),
            headers=BAD_CREDENTIALS[credentials],
        )
        try:
            error = openai_error(response, 401)
            assert error["code"] == "invalid_api_key", error
            assert response.headers["www-authenticate"].startswith("Bearer")
        except (AssertionError, KeyError) as exc:
            failures.append(f"{op}: {exc!r}")
    assert not failures, "\n".join(failures)


def _targets(app: FastAPI, values: dict[str, str]) -> list[tuple[Operation, str]]:
    return [(op, op.url(values)) for op in v1_operations(app) if op.body_model is not None]


async def _values(client: httpx.AsyncClient, alice: Account) -> dict[str, str]:
    mine = await seed(client, alice)
    return {"conversation_id": mine.conversation, "item_id": mine.item}


async def test_undecodable_bodies_are_400_naming_body(
    app: FastAPI, client: httpx.AsyncClient, store: Store, alice: Account
) -> None:
    values = await _values(client, alice)
    before = await db_snapshot(store, alice.id)
    headers = {**alice.headers, "content-type": "application/json"}
    failures = []
    for op, url in _targets(app, values):
        for name, (body, message) in UNDECODABLE_BODIES.items():
            response = await client.request(op.method, url, content=body, headers=headers)
            try:
                error = openai_error(response, 400)
                assert error["param"] == "body", error
                assert message in error["message"], error
                assert_no_internals(response)
            except AssertionError as exc:
                failures.append(f"{op} {name}: {exc}")
    assert not failures, "\n".join(failures)
    assert await db_snapshot(store, alice.id) == before


async def test_server_owned_fields_are_refused(
    app: FastAPI, client: httpx.AsyncClient, store: Store, alice: Account
) -> None:
    """A body naming what the server owns (``id``, ``created_at``, ``user_id``…) is a 400
    naming that field; nothing is written."""
    values = await _values(client, alice)
    before = await db_snapshot(store, alice.id)
    failures = []
    tried = 0
    for op, url in _targets(app, values):
        base = sample_body(op.body_model)
        assert base is not None
        for name, value in SERVER_OWNED.items():
            if name in op.body_model.model_fields:  # type: ignore[union-attr]
                continue
            tried += 1
            response = await client.request(
                op.method, url, json={**base, name: value}, headers=alice.headers
            )
            try:
                assert openai_error(response, 400)["param"] == name
            except AssertionError as exc:
                failures.append(f"{op} {name}: {exc}")
    assert tried >= 3 * len(SERVER_OWNED) - 6
    assert not failures, "\n".join(failures)
    assert await db_snapshot(store, alice.id) == before


async def test_the_openapi_document_describes_every_route(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    document = (await client.get("/openapi.json")).json()
    error_ref = "#/components/schemas/OpenAIError"
    failures = []
    for op in v1_operations(app):
        entry = document["paths"][op.path][op.method.lower()]
        responses = entry["responses"]
        problems = []
        if not entry.get("description"):
            problems.append("no description")
        if "422" in responses:
            problems.append("documents a 422 (/v1 answers 400)")
        for status in ("400", "401", "404", "409", "429", "default"):
            schema = responses.get(status, {}).get("content", {}).get("application/json", {})
            if schema.get("schema", {}).get("$ref") != error_ref:
                problems.append(f"{status} is not OpenAI's error body")
        if problems:
            failures.append(f"{op}: {', '.join(problems)}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("key", ["\b", "unit\x1fseparator", "nul\x00"])
async def test_metadata_convstore_cannot_store_is_a_400_naming_it(
    client: httpx.AsyncClient, store: Store, alice: Account, key: str
) -> None:
    """OpenAI's metadata is string pairs; a key or value convstore refuses to store (control
    characters) is a 400 naming ``metadata``, on create and on update, and nothing is written
    (found by the long fuzz profile: it was a 500)."""
    created = await client.post("/v1/conversations", json={}, headers=alice.headers)
    assert created.status_code == 200, created.text
    url = f"/v1/conversations/{created.json()['id']}"
    before = await db_snapshot(store, alice.id)
    for path in ("/v1/conversations", url):
        for metadata in ({key: "v"}, {"k": key}):
            response = await client.post(path, json={"metadata": metadata}, headers=alice.headers)
            assert (openai_error(response, 400)["param"] or "").startswith("metadata"), path
    assert await db_snapshot(store, alice.id) == before
