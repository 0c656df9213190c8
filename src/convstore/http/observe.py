"""What an operator watches: one access log line and the HTTP metrics per request
(:class:`ObserveMiddleware`), ``/metrics`` in Prometheus' text format, and the logging
configuration of ``convstore serve`` (JSON lines or text, the request id on every line)."""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
import sys
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convstore.config import Settings
from convstore.http.deps import get_store
from convstore.http.errors import problem
from convstore.kit import context, metrics

ACCESS_LOGGER = "convstore.access"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ObserveMiddleware:
    """Time each HTTP request, count it by route template (``/api/v1/conversations/{id}``,
    never the raw path, so the label set stays bounded) and status, and write its access line
    (when ``access_log``) with the request id and the acting user, never a credential."""

    def __init__(self, app: ASGIApp, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root = scope.get("root_path", "")
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            seconds = time.perf_counter() - started
            route = _route(scope, root, status)
            metrics.http_request(scope["method"], route, status, seconds)
            if self.access_log:
                self._access_line(scope, route, status, seconds)

    def _access_line(self, scope: Scope, route: str, status: int, seconds: float) -> None:
        ctx = context.current()
        client = scope.get("client")
        duration_ms = round(seconds * 1000, 1)
        self.log.info(
            "%s %s %d %.1fms",
            scope["method"],
            scope["path"],
            status,
            duration_ms,
            extra={
                "method": scope["method"],
                "path": scope["path"],
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "client": client[0] if client else None,
                "user_id": ctx.user_id if ctx else None,
            },
        )


def _route(scope: Scope, root: str, status: int) -> str:
    """The matched route's template; for a mounted app (MCP, the page's assets) its prefix;
    ``unmatched`` for anything else (a 404, a 405 of an unknown method)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    pattern = getattr(route, "path_regex", None)
    if isinstance(template, str) and isinstance(pattern, re.Pattern):
        return _prefix(pattern, scope["path"]) + template
    mounted = scope.get("root_path", "")
    if isinstance(mounted, str) and mounted != root:
        return f"{mounted.removeprefix(root)}/*"
    return "unmatched"


@functools.lru_cache(maxsize=1024)
def _tail(pattern: re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(pattern.pattern.removeprefix("^"))


def _prefix(pattern: re.Pattern[str], path: str) -> str:
    """What an included router's prefix added before the route's own path (FastAPI keeps a
    route's template without the prefix it was included under): the part of ``path`` before
    the route's pattern matches its end."""
    match = _tail(pattern).search(path)
    return path[: match.start()] if match else ""


async def metrics_endpoint(request: Request) -> Response:
    """The metrics in Prometheus' text format; with ``CONVSTORE_METRICS_TOKEN`` set, only for
    ``Authorization: Bearer <that token>``."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    token = get_store(request).settings.metrics_token
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.encode(), expected):
            return problem(
                401,
                "invalid_credentials",
                "the metrics need the token of CONVSTORE_METRICS_TOKEN",
                headers={"WWW-Authenticate": "Bearer"},
            )
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def install_observability(app: FastAPI, settings: Settings) -> None:
    """The access log and metrics middleware, and ``/metrics`` when it is enabled (a plain
    route outside the API's document: Prometheus' format, for the scraper, not for clients)."""
    app.add_middleware(ObserveMiddleware, access_log=settings.access_log)
    if settings.metrics_enabled and metrics.ENABLED:
        app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)


def log_format(settings: Settings) -> str:
    """``json`` or ``text``: ``auto`` is text on a terminal, JSON lines otherwise."""
    if settings.log_format != "auto":
        return settings.log_format
    return "text" if sys.stderr.isatty() else "json"


def logging_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of ``convstore serve``: convstore's loggers and
    uvicorn's write to stderr in one format, each record with the request's id and user."""
    from pythonjsonlogger.core import RESERVED_ATTRS

    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": log_format(settings),
        "filters": ["context"],
    }
    logger = {"handlers": ["stderr"], "level": settings.log_level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "convstore.kit.context.ContextFilter"}},
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s",
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "ts",
                "reserved_attrs": [*RESERVED_ATTRS, "color_message"],  # uvicorn's ANSI copy
            },
            "text": {
                "format": "%(asctime)s %(levelname)-8s %(name)s [%(request_id)s] %(message)s",
            },
        },
        "handlers": {"stderr": handler},
        "loggers": {
            "convstore": logger,
            "uvicorn": logger,
            "uvicorn.access": logger,
        },
    }
