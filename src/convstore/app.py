"""The application, assembled at the top of the package: ``create_app(settings)`` builds the FastAPI
app from every router, the shared HTTP pieces (``convstore.http``) and MCP; ``convstore serve``
runs it under uvicorn.

The engine, the auth keys and the rate limiter are built in the lifespan, never at import.
A database that is behind the migrations is upgraded on start (``CONVSTORE_AUTO_MIGRATE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import event

from convstore import __version__, migrate
from convstore.apikeys.router import router as api_keys_router
from convstore.assistant.external import Tool
from convstore.assistant.protocol import Assistant
from convstore.assistant.providers import build_assistant
from convstore.assistant.router import router as chat_router
from convstore.assistant.service import ChatService
from convstore.auth.notifier import LogNotifier, Notifier
from convstore.auth.passwords import Passwords
from convstore.auth.router import router as auth_router
from convstore.auth.secret import resolve_secret
from convstore.auth.service import Auth
from convstore.auth.tokens import AccessTokens, ExternalIssuer
from convstore.commands.purge import purge_periodically
from convstore.compat.errors import OpenAIErrors
from convstore.compat.router import router as compat_router
from convstore.config import Settings, get_settings
from convstore.conversations.hot import install as install_hot_page
from convstore.conversations.router import router as conversations_router
from convstore.db import Database, create_engine
from convstore.http.cors import install_cors
from convstore.http.deps import API_PREFIX, get_auth, get_limits, get_store
from convstore.http.errors import install_error_handlers, problem
from convstore.http.health import router as health_router
from convstore.http.idempotency import Replay, replay_headers
from convstore.http.links import add_links
from convstore.http.middleware import (
    BodyLimitMiddleware,
    ResponseHeadersMiddleware,
)
from convstore.http.observe import install_observability
from convstore.http.ratelimit import RateLimited, RateLimits
from convstore.http.tracing import Tracing
from convstore.http.tracing import wanted as tracing_wanted
from convstore.items.router import router as items_router
from convstore.kit.metrics import PoolGauges
from convstore.store import Store
from convstore.tasks.router import router as tasks_router
from convstore.users.router import router as admin_users_router
from convstore.web import install_web

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from convstore.mcp.http import McpHttpApp


def create_app(
    settings: Settings | None = None,
    *,
    notifier: Notifier | None = None,
    assistant: Assistant | None = None,
    tools: Sequence[Tool] = (),
    http_client: httpx.AsyncClient | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """Build the application.

    Args:
        settings: default: from the environment.
        notifier: delivers password reset tokens (default: the log).
        tools: Python tools the ``openai`` assistant may call, next to the task tools and
            the tools of ``CONVSTORE_MCP_SERVERS``.
        http_client: used to fetch an external issuer's JWKS.
        tracer_provider: where the spans go when tracing is on (``CONVSTORE_OTEL_ENABLED``;
            default: an OTLP exporter configured by the ``OTEL_*`` variables).

    Raises:
        WeakSecret: in production without a strong ``CONVSTORE_SECRET_KEY``.
        MissingExtra: tracing turned on without the otel extra.
    """
    settings = settings or get_settings()
    secret = resolve_secret(settings)
    mcp_app = _mcp_app()
    tracing: Tracing | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        gauges = PoolGauges(settings.db_pool_size)
        event.listen(engine.sync_engine, "checkout", gauges.checkout)
        event.listen(engine.sync_engine, "checkin", gauges.checkin)
        if tracing is not None:
            tracing.engine_opened(engine)
        if settings.auto_migrate:
            await migrate.upgrade_if_behind(engine)
        store = Store(Database(engine), settings)
        passwords = Passwords(settings)
        external = ExternalIssuer(settings, http_client) if settings.external_issuer else None
        app.state.store = store
        app.state.auth = Auth(
            settings,
            passwords,
            AccessTokens(settings, secret),
            secret,
            notifier or LogNotifier(),
            external,
        )
        app.state.rate_limits = RateLimits(settings)
        app.state.chat = None  # built on first use (the provider may load heavier modules)
        app.state.chat_factory = lambda: ChatService(
            store, settings, assistant or build_assistant(settings), tools
        )
        # CONVSTORE_PURGE_RETENTION_DAYS: purge old soft deletions in the background.
        purger = (
            asyncio.create_task(purge_periodically(store, settings), name="convstore-purge")
            if settings.purge_retention_days is not None
            else None
        )
        try:
            async with mcp_app.lifespan() if mcp_app else contextlib.nullcontext():
                yield
        finally:
            if purger is not None:
                purger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purger
            try:
                if app.state.chat is not None:
                    await app.state.chat.aclose()
            finally:
                await store.close()
                gauges.close()
                if tracing is not None:
                    tracing.engine_closed()

    app = FastAPI(
        title="convstore",
        version=__version__,
        lifespan=lifespan,
        # No redirect from /path/ to /path: Starlette would build its Location from the Host
        # header, which the client chooses. Such a path is a 404 like any unknown one.
        redirect_slashes=False,
        openapi_url="/openapi.json" if settings.serves_api_docs else None,
        description="Users, conversations, messages with tool calls, and per-user tasks. "
        "Every error is an RFC 9457 problem; another user's object is a 404.",
    )
    install_error_handlers(app)
    app.add_exception_handler(Replay, _replay)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(OpenAIErrors)  # /v1 answers OpenAI's error body (its 413 too)
    install_cors(app, settings)  # outside the body limit: its 413 carries the CORS headers
    install_observability(app, settings)  # inside the request id, which its lines carry
    app.add_middleware(ResponseHeadersMiddleware)  # the outermost: it sees every response
    app.include_router(health_router)
    routers = (
        auth_router,
        api_keys_router,
        conversations_router,
        items_router,
        tasks_router,
        admin_users_router,
    )
    for router in (*routers, chat_router):
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(compat_router)  # /v1/conversations
    install_hot_page(app)  # the page of messages as a plain route in front of its FastAPI one
    if mcp_app is not None:
        from convstore.mcp.http import mount

        mount(app, mcp_app)
    install_web(app, settings)
    add_links(app)
    if tracing_wanted(settings):
        tracing = Tracing(app, tracer_provider)
    return app


def _mcp_app() -> McpHttpApp | None:
    """The ``/mcp`` endpoint, served when the mcp extra is installed (``convstore[mcp]``)."""
    if importlib.util.find_spec("mcp") is None:
        return None
    from convstore.mcp.http import mcp_http_app

    return mcp_http_app(get_store, get_auth, get_limits=get_limits)


async def _replay(_: Request, exc: Exception) -> Response:
    """The stored first response to an ``Idempotency-Key``, byte for byte."""
    assert isinstance(exc, Replay)
    return Response(
        exc.body,
        status_code=exc.status_code,
        media_type="application/json",
        headers=replay_headers(exc),
    )


async def _rate_limited(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimited)
    return problem(429, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after)})
