"""Helpers of the HTTP tests: the route inventory (built from ``app.routes``), sample bodies,
problem assertions, seeded data and snapshots of one user's rows."""

from __future__ import annotations

import types
import typing
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, select

from convstore import Store
from convstore.conversations.hot import HotRoute
from convstore.http.deps import admin_user, current_user
from convstore.models import Base
from tests.support.api import PASSWORD, Account

API = "/api/v1"
PROBLEM_JSON = "application/problem+json"
ID_PARAMS = frozenset({"conversation_id", "message_id", "task_id", "key_id", "item_id"})
"""Path parameters naming a tenant's object: every route taking one is in the BOLA matrix."""
ADMIN_PARAMS = frozenset({"user_id"})
"""Path parameters of the admin routes (an account, named by an admin): these routes are not in
the BOLA matrix; ``test_tenancy`` checks that each answers a non-admin as an unknown path."""

PUBLIC_OPERATIONS = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("POST", f"{API}/auth/register"),
        ("POST", f"{API}/auth/login"),
        ("POST", f"{API}/auth/refresh"),
        ("POST", f"{API}/auth/password-reset/request"),
        ("POST", f"{API}/auth/password-reset/confirm"),
        ("POST", f"{API}/auth/external"),
    }
)
"""The operations that are public on purpose. Anything else must require a signed-in user."""
DOC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
"""The non-API routes FastAPI adds (OpenAPI document and its viewers)."""
WEB_PATHS = frozenset({"/", "/static", "/api-docs-assets"})
"""The chat page, its assets and the viewers' assets (public static files, no user data)."""
WEBSOCKETS = frozenset({f"{API}/chat/ws"})
"""WebSocket routes: they authenticate in-band; ``test_tenancy`` probes each one."""

SAMPLE_BODIES: dict[str, dict[str, Any]] = {
    "ConversationCreate": {"title": "x"},
    "ConversationUpdate": {"title": "x"},
    "MessageCreate": {"role": "user", "content": "x"},
    "MessageUpdate": {"content": "x"},
    "TaskCreate": {"title": "x"},
    "TaskUpdate": {"title": "x"},
    "PasswordChangeRequest": {
        "current_password": PASSWORD,
        "new_password": "another long passphrase",
    },
    "RegisterRequest": {"email": "sample-new-user@example.com", "password": PASSWORD},
    "RefreshRequest": {"refresh_token": "x" * 43},
    "PasswordResetRequest": {"email": "sample-new-user@example.com"},
    "PasswordResetConfirm": {"token": "x" * 43, "new_password": "another long passphrase"},
    "ExternalLoginRequest": {"id_token": "e30.e30.c2lnbmF0dXJlLWlzLWhlcmU"},
    "ChatRequest": {"content": "x"},
    "ApiKeyCreate": {"name": "x"},
    "ItemsCreate": {"items": [{"type": "message", "role": "user", "content": "x"}]},
    "OpenAIConversationUpdate": {"metadata": {"k": "v"}},
    "OpenAIItemsCreate": {"items": [{"type": "message", "role": "user", "content": "x"}]},
}
"""A plausible valid body per body model, by class name (models accepting ``{}`` need none)."""


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _dependency_calls(dependant: Dependant) -> Iterator[Any]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _dependency_calls(dep)


def _header_names(dependant: Dependant) -> Iterator[str]:
    for param in dependant.header_params:
        yield param.alias.lower()
    for dep in dependant.dependencies:
        yield from _header_names(dep)


@dataclass(frozen=True)
class Operation:
    """One method of one API route, as the app serves it (prefixes included)."""

    method: str
    path: str
    context: RouteContext = field(compare=False, repr=False)

    @property
    def path_params(self) -> list[str]:
        return [p.name for p in self.context.dependant.path_params]

    @property
    def id_params(self) -> list[str]:
        return [p for p in self.path_params if p in ID_PARAMS]

    @property
    def query_params(self) -> list[str]:
        return [p.name for p in self.context.dependant.query_params]

    @property
    def header_params(self) -> set[str]:
        """The request headers the route reads (lower-cased), its dependencies' included."""
        return set(_header_names(self.context.dependant))

    @property
    def body_model(self) -> type[BaseModel] | None:
        body_field = self.context.body_field
        if body_field is None:
            return None
        model = _unwrap_optional(body_field.field_info.annotation)
        assert isinstance(model, type), model
        assert issubclass(model, BaseModel), model
        return model

    @property
    def needs_auth(self) -> bool:
        """Whether the route depends (directly or not) on the signed-in user."""
        return current_user in set(_dependency_calls(self.context.dependant))

    @property
    def needs_admin(self) -> bool:
        """Whether the route is for admins only (it depends on ``admin_user``)."""
        return admin_user in set(_dependency_calls(self.context.dependant))

    @property
    def success_status(self) -> int:
        return int(self.context.status_code or 200)

    def url(self, values: dict[str, Any]) -> str:
        """The path with its parameters filled in from ``values``."""
        return self.path.format(**{p: values[p] for p in self.path_params})

    def random_url(self) -> str:
        return self.url({p: uuid.uuid4() for p in self.path_params})

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations(app: FastAPI) -> list[Operation]:
    """Every method of every ``APIRoute`` of ``app`` (included routers flattened)."""
    ops = []
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute):
            for method in sorted(ctx.methods or ()):
                ops.append(Operation(method, cast(str, ctx.path), ctx))
    return ops


OPENAI_PREFIX = "/v1/"
"""The OpenAI-compatible API: its errors are OpenAI's error body, not problems (tests/compat)."""


def problem_operations(app: FastAPI) -> list[Operation]:
    """The operations whose errors are RFC 9457 problems: all but the OpenAI-compatible ones
    (tests/compat checks those the same ways, against OpenAI's error body)."""
    return [op for op in operations(app) if not op.path.startswith(OPENAI_PREFIX)]


def other_routes(app: FastAPI) -> dict[str, str]:
    """The routes that are not API routes (docs, websockets, mounts…): path -> kind."""
    kinds = {}
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, APIRoute):
            continue
        path = cast(str, ctx.path)
        if isinstance(route, APIWebSocketRoute) and path in WEBSOCKETS:
            kinds[path] = "websocket"
        elif path in DOC_PATHS and not isinstance(route, APIWebSocketRoute):
            kinds[path] = "docs"
        elif path == "/mcp":
            kinds[path] = "mcp"
        elif path == "/metrics" and not isinstance(route, APIWebSocketRoute):
            kinds[path] = "metrics"  # Prometheus' scrape, protected by CONVSTORE_METRICS_TOKEN
        elif path in WEB_PATHS and not isinstance(route, APIWebSocketRoute):
            kinds[path] = "web"
        elif isinstance(route, HotRoute):
            # A plain route in front of the API route of the same path and method, which it
            # answers for exactly (tests/conversations/test_hot_page.py): the API route's
            # classification covers it, and every request of the matrix goes through it.
            kinds[path] = "hot " + ",".join(sorted(route.methods or ()))
        else:
            kinds[path] = f"unclassified {type(route).__name__}"
    return kinds


def classify(op: Operation) -> str:
    """``matrix`` (an authenticated route with an object id: the BOLA matrix covers it),
    ``admin`` (for admins only, with no id or an account's), ``public`` (allowlisted),
    ``authenticated`` (signed-in, no object id), or ``unclassified``."""
    if op.needs_admin:
        return "admin" if set(op.path_params) <= ADMIN_PARAMS else "unclassified"
    if op.path_params:
        if set(op.path_params) <= ID_PARAMS and op.needs_auth:
            return "matrix"
        return "unclassified"
    if (op.method, op.path) in PUBLIC_OPERATIONS:
        return "public"
    if op.needs_auth:
        return "authenticated"
    return "unclassified"


def sample_body(model: type[BaseModel] | None) -> dict[str, Any] | None:
    """A valid body for ``model``; a model without an entry must accept ``{}``."""
    if model is None:
        return None
    if model.__name__ in SAMPLE_BODIES:
        return dict(SAMPLE_BODIES[model.__name__])
    try:
        model.model_validate({})
    except ValidationError:
        raise LookupError(f"add a sample body for {model.__name__} to SAMPLE_BODIES") from None
    return {}


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status`` (and ``code``); its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    for member in ("type", "title", "detail", "code"):
        assert isinstance(body.get(member), str), (member, body)
        assert body[member], (member, body)
    assert body.get("status") == status, body
    if code is not None:
        assert body["code"] == code, body
    return body


def error_fields(response: httpx.Response) -> list[str]:
    """The ``errors[].field`` of a 422 problem."""
    body = assert_problem(response, 422, "invalid_input")
    return [e["field"] for e in body.get("errors") or []]


INTERNALS = ("traceback", "select ", "insert ", "update ", "sqlalchemy", "asyncpg", "sqlite")
"""Text that must never appear in a response body (lower-cased comparison)."""


def assert_no_internals(response: httpx.Response) -> None:
    text = response.text.lower()
    leaked = [word for word in INTERNALS if word in text]
    assert not leaked, (leaked, response.request.method, response.request.url, response.text)


# ---- seeded data ------------------------------------------------------------------------------


@dataclass
class Seeded:
    """One user's objects: live ones, and a soft-deleted conversation with its message."""

    account: Account
    conversation: str
    message: str
    other_conversation: str
    deleted_conversation: str
    deleted_message: str
    task: str
    other_task: str
    deleted_task: str
    tag: str
    api_key: str
    item: str

    def ids(self) -> set[str]:
        return {
            self.api_key,
            self.item,
            self.conversation,
            self.message,
            self.other_conversation,
            self.deleted_conversation,
            self.deleted_message,
            self.task,
            self.other_task,
            self.deleted_task,
        }


async def created(client: httpx.AsyncClient, account: Account, path: str, body: Any) -> str:
    response = await client.post(path, json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def seed(client: httpx.AsyncClient, account: Account) -> Seeded:
    """Give ``account`` conversations (one soft-deleted), messages with tool calls, tasks and an
    API key."""
    h = account.headers
    tag = f"t{uuid.uuid4().hex[:8]}"
    conv = await created(client, account, f"{API}/conversations", {"title": "mine"})
    await created(
        client, account, f"{API}/conversations/{conv}/messages", {"role": "user", "content": "hi"}
    )
    message = await created(
        client,
        account,
        f"{API}/conversations/{conv}/messages",
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "call_1", "name": "add_task", "arguments": {"title": "a"}}],
        },
    )
    await created(
        client,
        account,
        f"{API}/conversations/{conv}/messages",
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
    )
    other = await created(
        client, account, f"{API}/conversations", {"metadata": {"k": "v"}, "title": "two"}
    )
    gone = await created(client, account, f"{API}/conversations", {"title": "gone"})
    gone_message = await created(
        client, account, f"{API}/conversations/{gone}/messages", {"role": "user", "content": "x"}
    )
    deleted = await client.delete(f"{API}/conversations/{gone}", headers=h)
    assert deleted.status_code == 204, deleted.text
    task = await created(client, account, f"{API}/tasks", {"title": "task", "tags": [tag]})
    other_task = await created(
        client, account, f"{API}/tasks", {"title": "done", "tags": [tag], "priority": "high"}
    )
    done = await client.post(f"{API}/tasks/{other_task}/complete", headers=h)
    assert done.status_code == 200, done.text
    deleted_task = await created(client, account, f"{API}/tasks", {"title": "bye"})
    deleted = await client.delete(f"{API}/tasks/{deleted_task}", headers=h)
    assert deleted.status_code == 204, deleted.text
    api_key = await created(client, account, f"{API}/api-keys", {"name": "seeded"})
    items = await client.post(
        f"{API}/conversations/{conv}/items",
        json={"items": [{"type": "reasoning", "summary": [{"type": "summary_text", "text": "t"}]}]},
        headers=h,
    )
    assert items.status_code == 201, items.text
    return Seeded(
        account,
        conv,
        message,
        other,
        gone,
        gone_message,
        task,
        other_task,
        deleted_task,
        tag,
        api_key,
        items.json()["items"][0]["id"],
    )


async def all_pages(
    client: httpx.AsyncClient, account: Account, path: str, **params: Any
) -> list[dict[str, Any]]:
    """Every item of a list endpoint, following ``next_cursor`` with pages of 100."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": 100, **params}
    for _ in range(1000):
        response = await client.get(path, params=query, headers=account.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if not page["has_more"]:
            return items
        query["cursor"] = page["next_cursor"]
    raise AssertionError(f"{path} never ended")


async def api_snapshot(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    """Everything ``account`` can see through the API."""
    conversations = await all_pages(client, account, f"{API}/conversations", include_deleted="true")
    snapshot: dict[str, Any] = {"conversations": conversations, "tasks": []}
    for conv in conversations:
        one = await client.get(
            f"{API}/conversations/{conv['id']}",
            params={"include_deleted": "true"},
            headers=account.headers,
        )
        assert one.status_code == 200, one.text
        snapshot[f"conversation {conv['id']}"] = one.json()
        if conv["deleted_at"] is None:
            snapshot[f"messages {conv['id']}"] = await all_pages(
                client, account, f"{API}/conversations/{conv['id']}/messages"
            )
    snapshot["tasks"] = await all_pages(client, account, f"{API}/tasks")
    snapshot["api_keys"] = await all_pages(client, account, f"{API}/api-keys")
    return snapshot


def owned_tables() -> dict[str, Table]:
    """Every table with a ``user_id`` column (new tables are picked up on their own)."""
    return {t.name: t for t in Base.metadata.sorted_tables if "user_id" in t.c}


async def db_snapshot(store: Store, user_id: uuid.UUID) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the user owns (deleted ones included), straight from the database."""
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    tables = owned_tables()
    assert {"conversations", "messages", "tasks", "idempotency_keys"} <= set(tables)
    users = Base.metadata.tables["users"]
    async with store.db.engine.connect() as conn:
        rows = await conn.execute(select(users).where(users.c.id == user_id))
        snapshot["users"] = [tuple(r) for r in rows]
        for name, table in tables.items():
            stmt = select(table).where(table.c.user_id == user_id)
            rows = await conn.execute(stmt.order_by(*table.primary_key.columns))
            snapshot[name] = [tuple(r) for r in rows]
    return snapshot


async def count_rows(store: Store, name: str, user_id: uuid.UUID) -> int:
    table = owned_tables()[name]
    async with store.db.engine.connect() as conn:
        rows = await conn.execute(select(table.c.id).where(table.c.user_id == user_id))
        return len(rows.all())
