"""Schemathesis against the app's own OpenAPI document, on SQLite and PostgreSQL.

Every operation is called with generated valid and invalid requests, signed in with a Bearer
token, and each response must be: not a 5xx, a documented status code, a documented content
type, and a body matching the documented schema. The stateful phase follows the document's
links (``convstore.http.links``): create a conversation, a message or a task, then read, change,
delete and restore it. The app runs in-process on schemathesis' ASGI transport, with its
lifespan (the store, the pool) on that transport's event loop.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import Phase, given
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure, FlakyStrategyDefinition
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.generation.modes import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.fuzz.profiles import BUDGET, fuzz_settings
from tests.support.api import PASSWORD, api_settings, build_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

SESSION_ENDING = {
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/password/change"),
    ("PATCH", "/api/v1/auth/me"),
    ("DELETE", "/api/v1/auth/me"),
}
"""Operations that may end the caller's session or account: each case gets an account of its
own, so the shared one stays signed in for the rest of the run."""

_emails = itertools.count(1)


@dataclass
class FuzzApi:
    """The loaded schema and a signed-in account on one backend's app."""

    schema: OpenApiSchema
    token: str = ""
    seen: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    """Responses by (method, path, status)."""

    def sign_up(self) -> str:
        """Register and sign in a new account through the API; its access token."""
        email = f"fuzz{next(_emails)}-{uuid.uuid4().hex[:8]}@example.com"
        body = {"email": email, "password": PASSWORD}
        created = (
            self.schema["/api/v1/auth/register"]["POST"]
            .Case(body=body, media_type="application/json")
            .call()
        )
        assert created.status_code == 201, created.text
        tokens = (
            self.schema["/api/v1/auth/login"]["POST"]
            .Case(body=body, media_type="application/json")
            .call()
        )
        assert tokens.status_code == 200, tokens.text
        token: str = tokens.json()["access_token"]
        return token

    def headers_for(self, case: Case, token: str | None = None) -> dict[str, str]:
        """The Bearer header for ``case``: ``token`` (default: the shared account's), or a fresh
        account's when the operation may end its session."""
        key = (case.method.upper(), case.operation.path)
        if key in SESSION_ENDING:
            token = self.sign_up()
        return {"Authorization": f"Bearer {token or self.token}"}


@pytest.fixture(scope="module")
def fuzz_api(database_url: str) -> Iterator[FuzzApi]:
    app = build_app(api_settings(database_url))
    try:
        api = FuzzApi(schemathesis.openapi.from_asgi("/openapi.json", app))
        api.token = api.sign_up()
        yield api
    finally:
        # The transport keeps each app's lifespan running until the process exits: close this
        # one's store (its pool) before the database is dropped.
        shutdown_lifespans()


def _operations() -> list[Any]:
    """Every (method, path) of the OpenAPI document (built without starting the app)."""
    document = build_app(api_settings("sqlite://")).openapi()
    return [
        pytest.param(method.upper(), path, id=f"{method.upper()} {path}")
        for path, item in document["paths"].items()
        for method in item
    ]


@pytest.mark.parametrize(("method", "path"), _operations())
def test_every_operation_conforms(fuzz_api: FuzzApi, method: str, path: str) -> None:
    operation = fuzz_api.schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @fuzz_settings(max_examples=BUDGET.examples)
    @given(case=cases)
    def call(case: Case) -> None:
        response = case.call_and_validate(headers=fuzz_api.headers_for(case), checks=CHECKS)
        fuzz_api.seen[(method, path, response.status_code)] += 1

    call()
    assert any(key[:2] == (method, path) for key in fuzz_api.seen)


def test_linked_scenarios_conform(fuzz_api: FuzzApi) -> None:
    # The scenarios chain the problem API's links; /v1 (OpenAI's shapes, no links) is fuzzed
    # operation by operation above and driven by the openai client in tests/compat.
    linked_api = fuzz_api.schema.exclude(path_regex="^/v1/")

    class Scenarios(linked_api.as_state_machine()):  # type: ignore[misc]
        """Each scenario signs in an account of its own: what it finds (its lists, its
        idempotency keys) is what it made, so hypothesis' replay of it meets the same state."""

        def setup(self) -> None:
            self.token = fuzz_api.sign_up()

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"headers": fuzz_api.headers_for(case, self.token)}

        def validate_response(
            self, response: Response, case: Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            linked.append((case.method.upper(), case.operation.path, response.status_code))
            try:
                case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)
            except Exception as exc:
                failures.append(f"{exc}\n{case.as_curl_command()}")
                raise

    linked: list[tuple[str, str, int]] = []
    failures: list[str] = []
    """Each failed check as it happened, in case a replay of its scenario does not reproduce it
    (the database is shared with the operations' own tests)."""
    try:
        Scenarios.run(
            settings=fuzz_settings(
                max_examples=BUDGET.scenarios,
                stateful_step_count=BUDGET.scenario_steps,
                # As schemathesis runs its own stateful phase: no shrinking against a live app.
                phases=[Phase.generate],
            )
        )
    except (FlakyStrategyDefinition, FlakyFailure) as exc:
        if not failures:
            raise
        raise AssertionError("\n\n".join(dict.fromkeys(failures))) from exc
    # The links were followed: an object created in a scenario was then found by its id.
    found = {path for method, path, status in linked if status == 200 and "{" in path}
    assert found, Counter(linked)


def test_every_create_links_to_its_object(fuzz_api: FuzzApi) -> None:
    """The stateful phase has something to chain: each create names the operations on its
    object, with the id taken from the response."""
    document = fuzz_api.schema.raw_schema
    paths = document["paths"]
    created = {
        "/api/v1/conversations": "conversation_id",
        "/api/v1/conversations/{conversation_id}/messages": "message_id",
        "/api/v1/tasks": "task_id",
    }
    for path, parameter in created.items():
        # Ours name their operation by id; the fuzzer adds inferred links of its own
        # (by operationRef) once its stateful phase has run.
        links = {
            name: link
            for name, link in paths[path]["post"]["responses"]["201"]["links"].items()
            if "operationId" in link
        }
        assert {"get", "patch", "delete"} <= {
            method
            for link in links.values()
            for p, item in paths.items()
            for method, op in item.items()
            if op.get("operationId") == link["operationId"] and f"{{{parameter}}}" in p
        }
        assert all(link["parameters"][parameter] == "$response.body#/id" for link in links.values())
