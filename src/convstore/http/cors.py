"""Cross-origin requests (CORS), through Starlette's middleware: off unless
``CONVSTORE_CORS_ORIGINS`` names the origins a browser front end is served from."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from convstore.config import Settings

ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "Last-Event-ID")
"""What a browser may send: the bearer token, JSON bodies, retries of a create, and the resume
point of an event stream (plus the CORS-safelisted headers, always allowed)."""
EXPOSED_HEADERS = ("Location", "Idempotent-Replayed", "Retry-After", "X-Request-ID")
"""What a front end may read from a response: where a created object lives, whether a create
was replayed, when to retry after a 429 or 503, and the id to quote in a bug report."""
ALLOWED_METHODS = ("GET", "POST", "PATCH", "DELETE")


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Answer preflights and add the CORS headers for the configured origins (none: no CORS
    middleware at all, so a preflight is an ordinary ``OPTIONS`` request)."""
    if not settings.cors_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=settings.cors_max_age_seconds,
    )
