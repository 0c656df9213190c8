"""The chat page at ``/`` and the API documents' viewers, served from the package itself.

``install_web(app, settings)`` adds:

- ``/``: the single-page chat client (``static/index.html``) and its assets under ``/static``,
  every one of them with a Content-Security-Policy that allows scripts, styles and connections
  from the page's own origin only (no inline script, nothing from another origin);
- when the API documents are served (``settings.serves_api_docs``), ``/docs`` (Swagger UI),
  ``/docs/oauth2-redirect`` and ``/redoc`` (ReDoc) on assets vendored under ``apidocs/`` and
  served at ``/api-docs-assets``, in place of FastAPI's pages that load them from a CDN: the
  documents work on a machine without internet.

The vendored files and their licences are listed in ``static/vendor/README.md``.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convstore.config import Settings

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
APIDOCS_DIR = HERE / "apidocs"
STATIC_PATH = "/static"
APIDOCS_PATH = "/api-docs-assets"

PAGE_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
"""The page's policy: its own origin only, no inline script or style, no plugins, no framing."""

DOCS_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src {scripts}",
        "style-src 'self' 'unsafe-inline'",  # Swagger UI and ReDoc style elements at run time
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",  # ReDoc's search runs in a worker it makes from a blob
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
"""The viewers' policy: their own origin only (so ReDoc's footer logo on a CDN is not fetched);
the one inline script FastAPI writes into each page is allowed by its hash, no other."""

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

PAGE_HEADERS = (
    (b"content-security-policy", PAGE_CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class _PageHeaders:
    """ASGI wrapper adding the page's headers (CSP, referrer policy) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() not in _PAGE_NAMES]
                headers.extend(PAGE_HEADERS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


_PAGE_NAMES = frozenset(name for name, _ in PAGE_HEADERS)


async def _index(_: Request) -> Response:
    """The page. ``no-cache``: a new release's page and assets are seen at once."""
    headers = {name.decode(): value.decode() for name, value in PAGE_HEADERS}
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={**headers, "Cache-Control": "no-cache"},
    )


def install_web(app: FastAPI, settings: Settings) -> None:
    """Serve the chat page at ``/`` and, when ``settings.serves_api_docs``, the API documents'
    viewers on local assets (replacing FastAPI's CDN-backed ``/docs`` and ``/redoc``)."""
    mimetypes.add_type("text/javascript", ".mjs")  # module scripts need a JavaScript type
    routes: list[BaseRoute] = [
        Route("/", _index, methods=["GET", "HEAD"], name="web_index"),
        Mount(STATIC_PATH, _PageHeaders(StaticFiles(directory=STATIC_DIR)), name="web_static"),
    ]
    if settings.serves_api_docs and app.openapi_url:
        _drop_cdn_docs(app)
        routes += _docs_routes(app, app.openapi_url)
    app.router.routes.extend(routes)


def _drop_cdn_docs(app: FastAPI) -> None:
    """Remove the documents' pages FastAPI registered (they point at a CDN)."""
    paths = {app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url} - {None}
    app.router.routes[:] = [
        route
        for route in app.router.routes
        if not (isinstance(route, Route) and route.path in paths)
    ]


def _with_docs_csp(response: HTMLResponse) -> HTMLResponse:
    """``response`` with the viewers' CSP, allowing exactly the inline scripts it carries."""
    body = bytes(response.body).decode()
    sources = ["'self'"] + [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(body)
    ]
    response.headers["Content-Security-Policy"] = DOCS_CSP.format(scripts=" ".join(sources))
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _docs_routes(app: FastAPI, openapi_url: str) -> list[BaseRoute]:
    assets = APIDOCS_PATH
    title = app.title
    redirect = app.swagger_ui_oauth2_redirect_url

    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        html = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_PATH}/favicon.svg",
            oauth2_redirect_url=root + redirect if redirect else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        return _with_docs_csp(html)

    async def swagger_redirect(_: Request) -> HTMLResponse:
        return _with_docs_csp(get_swagger_ui_oauth2_redirect_html())

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        html = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_PATH}/favicon.svg",
            with_google_fonts=False,
        )
        return _with_docs_csp(html)

    routes: list[BaseRoute] = [Mount(assets, StaticFiles(directory=APIDOCS_DIR), name="apidocs")]
    if app.docs_url:
        routes.append(Route(app.docs_url, swagger, include_in_schema=False))
        if redirect:
            routes.append(Route(redirect, swagger_redirect, include_in_schema=False))
    if app.redoc_url:
        routes.append(Route(app.redoc_url, redoc, include_in_schema=False))
    return routes
