"""The hottest requests of a chat backend, a page of messages and an append, as plain ASGI
routes.

``GET`` and ``POST /api/v1/conversations/{id}/messages`` are served by :class:`MessagesPage`
and :class:`MessageAppend` in front of the FastAPI routes of the same path
(``router.list_messages``, ``router.append_message``), which stay the documented ones
(OpenAPI) and the fallback. FastAPI's per-request machinery (resolving dependencies,
validating parameters, serialising through the response model) cost more than convstore's own
work in the request, and the session check and the read took a pooled connection each; here
the page shares the session check's connection (docs/performance.md, fourth round).

The plain routes answer only requests they read exactly as FastAPI would: a canonical UUID
in the path; for the page at most ``limit``, ``cursor``, ``after`` and ``before``, once each,
in their plain forms; for the append a JSON body that is a valid message, no query and no
Idempotency-Key. Anything else goes to the FastAPI route, which has seen nothing of the
request yet (nothing is read or written before the hand-over; the body is handed on as
received), so every answer, every error included, is the one the documented route gives:
errors raised here are convstore's own, rendered by the same handlers.
``tests/conversations/test_hot_page.py`` compares the two, byte for byte.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Message, Receive, Scope, Send

from convstore.apikeys.service import looks_like_key
from convstore.conversations.schemas import MAX_SEQ, MessageCreate, MessageRead
from convstore.conversations.service import message as message_service
from convstore.http.deps import API_PREFIX, admit, current_user, get_auth, get_store
from convstore.kit import context
from convstore.kit.jsoninput import loads
from convstore.kit.pagination import MAX_CURSOR_CHARS, MAX_PAGE_SIZE
from convstore.users.schemas import UserRead

PATH = f"{API_PREFIX}/conversations/{{conversation_id}}/messages"
COLD = "convstore.cold"
"""Set in the scope of a request handed to the FastAPI route (the plain one then never
matches it)."""

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_COUNT = re.compile(r"0|[1-9][0-9]{0,9}")
_MESSAGE = TypeAdapter(MessageRead)


def _position(params: list[tuple[str, str]]) -> dict[str, Any] | None:
    """The page's parameters, or None when FastAPI should read them (anything unusual)."""
    given: dict[str, Any] = {"limit": 20, "cursor": None, "after": None, "before": None}
    names = [name for name, _ in params]
    if len(set(names)) != len(names) or not set(names) <= set(given):
        return None
    for name, value in params:
        if name == "cursor":
            if not value or len(value) > MAX_CURSOR_CHARS:
                return None
            given[name] = value
            continue
        if not _COUNT.fullmatch(value):
            return None
        number = int(value)
        if name == "limit" and not 1 <= number <= MAX_PAGE_SIZE:
            return None
        if name != "limit" and number > MAX_SEQ:
            return None
        given[name] = number
    return given


class MessagesPage:
    """The ASGI application of the plain route (see the module)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        text = scope["path_params"]["conversation_id"]
        position = _position(Request(scope).query_params.multi_items())
        if position is None or not _UUID.fullmatch(text):
            await self.app.router({**scope, COLD: True}, receive, send)
            return
        response = await self._page(Request(scope, receive), uuid.UUID(text), position)
        await response(scope, receive, send)

    async def _page(
        self, request: Request, conversation_id: uuid.UUID, position: dict[str, Any]
    ) -> Response:
        store = get_store(request)
        async with _signed_in(request, store.reading) as (conn, user):
            body = await message_service.page_json(conn, user.id, conversation_id, **position)
        return Response(body, media_type="application/json")


class MessageAppend:
    """The ASGI application of the plain append route (see the module)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await request.body()
        text = scope["path_params"]["conversation_id"]
        item = _message(request, body)
        if item is None or not _UUID.fullmatch(text) or scope.get("query_string"):
            await self.app.router({**scope, COLD: True}, _replay(body, receive), send)
            return
        response = await self._append(request, uuid.UUID(text), item)
        await response(scope, receive, send)

    async def _append(
        self, request: Request, conversation_id: uuid.UUID, item: MessageCreate
    ) -> Response:
        store = get_store(request)
        async with _signed_in(request, store.writing_statement) as (conn, user):
            (stored,) = await message_service.append_many(
                conn, user.id, conversation_id, [item], store.settings.limits, prefixed=False
            )
        location = f"{API_PREFIX}/conversations/{conversation_id}/messages/{stored.id}"
        return Response(
            _MESSAGE.dump_json(stored, by_alias=True),
            status_code=201,
            media_type="application/json",
            headers={"location": location},
        )


@contextlib.asynccontextmanager
async def _signed_in(
    request: Request, unit: Callable[[uuid.UUID], AbstractAsyncContextManager[AsyncConnection]]
) -> AsyncIterator[tuple[AsyncConnection, UserRead]]:
    """The caller (exactly as ``current_user`` admits them) and a connection of ``unit`` for
    their work. For one of convstore's access tokens the session check runs on that same
    connection; an API key, an external issuer's token or none take the general path first."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    auth = get_auth(request)
    if scheme.lower() != "bearer" or not token or looks_like_key(token) or auth.external:
        user = await current_user(request, token if scheme.lower() == "bearer" else None)
        async with unit(user.id) as conn:
            yield conn, user
        return
    access = auth.access.verify(token)
    async with unit(access.user_id) as conn:
        principal = await auth.session_principal(conn, access)
        context.bind_user(principal.user.id)
        yield conn, await admit(request, principal)


def _message(request: Request, body: bytes) -> MessageCreate | None:
    """The message of an append's body, or None when FastAPI should read the request: an
    Idempotency-Key, another media type, a body that is not a valid message."""
    if "idempotency-key" in request.headers:
        return None
    if request.headers.get("content-type", "").lower() != "application/json":
        return None
    try:
        return MessageCreate.model_validate(loads(body))
    except (ValueError, ValidationError):  # JSONDecodeError is a ValueError
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the FastAPI route: the body already read, then the client's messages."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class HotRoute(Route):
    """A route that steps aside for the requests it hands to the FastAPI route."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get(COLD):
            return Match.NONE, {}
        return super().matches(scope)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self  # the route template of the metrics and the access log
        await super().handle(scope, receive, send)


def install(app: FastAPI) -> None:
    """Put the plain routes in front of every other (the FastAPI ones stay behind them)."""
    for method, endpoint in (("GET", MessagesPage(app)), ("POST", MessageAppend(app))):
        route = HotRoute(PATH, endpoint, methods=[method])
        route.methods = {method}  # not HEAD, which the FastAPI route does not answer either
        app.router.routes.insert(0, route)
