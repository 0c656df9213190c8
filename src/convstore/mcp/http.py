"""MCP over Streamable HTTP, served inside the API (at ``/mcp``) for token-bearing users.

Every request must carry ``Authorization: Bearer <convstore access token>`` (or a token of the
configured external issuer): it is checked with :func:`convstore.http.deps.authenticate`
exactly like the REST API's, before the SDK sees the request. Otherwise the answer is a 401
problem with ``WWW-Authenticate: Bearer``. The user is handed to the tools through a context
variable that the SDK's per-request task inherits.

The endpoint is stateless (no ``Mcp-Session-Id``, any replica can answer any request) and
answers plain JSON. The SDK's session manager needs a running task group: enter
:meth:`McpHttpApp.lifespan` in the application's lifespan (until then requests get a 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from convstore.auth.service import Auth
from convstore.errors import ConvstoreError, InvalidCredentials
from convstore.http.deps import authenticate
from convstore.http.errors import problem
from convstore.http.ratelimit import RateLimited, RateLimits
from convstore.mcp.server import build_server
from convstore.store import Store

MCP_PATH = "/mcp"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who the request being served acts for, and on which store."""

    store: Store
    user_id: uuid.UUID


_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("convstore_mcp_caller")


def _current_store() -> Store:
    return _current().store


async def _current_user() -> uuid.UUID:
    return _current().user_id


def _current() -> Caller:
    try:
        return _caller.get()
    except LookupError:  # only reachable if a request bypassed McpHttpApp.__call__
        raise _NoToken() from None


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if there is one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def host_checks(allowed_hosts: Sequence[str] | None) -> TransportSecuritySettings | None:
    """The SDK's DNS-rebinding protection for ``allowed_hosts`` (``host``, ``host:port`` or
    ``host:*``), always including localhost; None (the default) leaves it off."""
    if allowed_hosts is None:
        return None
    local = ["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"]
    hosts = list(dict.fromkeys([*allowed_hosts, *local]))
    origins = [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class _NoToken(InvalidCredentials):
    """The request carries no bearer token at all (RFC 6750: challenge without an error)."""

    def __init__(self) -> None:
        super().__init__("not authenticated")


async def _started(started: asyncio.Event, task: asyncio.Task[None]) -> None:
    """Wait until ``started`` is set; raise what ``task`` failed with if it ends first."""
    waiter = asyncio.ensure_future(started.wait())
    try:
        await asyncio.wait([waiter, task], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if not started.is_set():
        task.result()
        raise RuntimeError("the MCP session manager stopped before it started")


def _refusal(exc: ConvstoreError) -> Response:
    """The problem answer for a request refused before MCP: 401, 429, or the error's status."""
    if isinstance(exc, InvalidCredentials):
        challenge = "Bearer" if isinstance(exc, _NoToken) else 'Bearer error="invalid_token"'
        return problem(401, exc.code, exc.message, headers={"WWW-Authenticate": challenge})
    if isinstance(exc, RateLimited):
        return problem(429, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after)})
    return problem(exc.status_code, exc.code, exc.message)


class McpHttpApp:
    """The ASGI app of the MCP endpoint: authenticates, then hands over to the SDK.

    Args:
        get_store: the store of a request (``convstore.http.deps.get_store``).
        get_auth: the authenticator of a request (``convstore.http.deps.get_auth``).
        get_limits: when given, every request counts against the user's rate limit.
        allowed_hosts: enable the SDK's Host/Origin checks for these hosts (see
            :func:`host_checks`); off by default, since a bearer token (never a cookie) is
            what grants access, and a foreign page cannot know it.
    """

    def __init__(
        self,
        get_store: Callable[[Request], Store],
        get_auth: Callable[[Request], Auth],
        *,
        get_limits: Callable[[Request], RateLimits] | None = None,
        allowed_hosts: Sequence[str] | None = None,
    ) -> None:
        self._get_store = get_store
        self._get_auth = get_auth
        self._get_limits = get_limits
        self._security = host_checks(allowed_hosts)
        self.server = build_server(_current_store, _current_user)
        self._manager: StreamableHTTPSessionManager | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the SDK's session manager meanwhile (a fresh one each time: apps may restart).

        The manager's task group lives in a task of its own, so this may be left by another
        task than the one that entered it (pytest-asyncio fixtures do that).
        """
        manager = StreamableHTTPSessionManager(
            app=self.server,
            stateless=True,
            json_response=True,
            security_settings=self._security,
        )
        started, stop = asyncio.Event(), asyncio.Event()

        async def run() -> None:
            async with manager.run():
                started.set()
                await stop.wait()

        task = asyncio.create_task(run(), name="convstore-mcp-session-manager")
        try:
            await _started(started, task)
            self._manager = manager
            yield
        finally:
            self._manager = None
            stop.set()
            await task

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request (other ASGI scopes are not handled here)."""
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        manager = self._manager
        if manager is None:
            unavailable = "the MCP endpoint is not running (its lifespan was not entered)"
            await problem(503, "unavailable", unavailable)(scope, receive, send)
            return
        try:
            caller = await self._authenticate(request)
        except ConvstoreError as exc:
            await _refusal(exc)(scope, receive, send)
            return
        if request.method != "POST":
            # Stateless: no session to end (DELETE) and no server-initiated messages to stream
            # (GET would hold an empty SSE stream open until the client leaves).
            await Response(status_code=405, headers={"Allow": "POST"})(scope, receive, send)
            return
        token = _caller.set(caller)
        try:
            await manager.handle_request(scope, receive, send)
        finally:
            _caller.reset(token)

    async def _authenticate(self, request: Request) -> Caller:
        """The caller behind the request's bearer token, counted against their rate limit."""
        token = bearer_token(request)
        if token is None:
            raise _NoToken()
        store = self._get_store(request)
        principal = await authenticate(store, self._get_auth(request), token)
        if self._get_limits is not None:
            limits = self._get_limits(request)
            await limits.hit(limits.user, "user", str(principal.user.id))
        return Caller(store, principal.user.id)


def mcp_http_app(
    get_store: Callable[[Request], Store],
    get_auth: Callable[[Request], Auth],
    *,
    get_limits: Callable[[Request], RateLimits] | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> McpHttpApp:
    """The MCP endpoint's ASGI app; see :class:`McpHttpApp`."""
    return McpHttpApp(get_store, get_auth, get_limits=get_limits, allowed_hosts=allowed_hosts)


def mount(app: Starlette, mcp_app: McpHttpApp, path: str = MCP_PATH) -> None:
    """Serve ``mcp_app`` at exactly ``path`` (``Mount`` would answer ``path`` with a redirect to
    ``path/``), outside the OpenAPI document."""
    app.router.routes.append(Route(path, endpoint=mcp_app, include_in_schema=False))
