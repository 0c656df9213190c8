"""RFC 9457 problem details: every error answer of the API, and the handlers that make them.

A problem has a stable ``type`` (a URN) and ``code``; validation problems list each rejected
field. Nothing internal (stack traces, SQL) ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from convstore.errors import (
    ConvstoreError,
    FieldError,
    InProgress,
    InvalidCredentials,
    InvalidInput,
)
from convstore.kit.jsoninput import MAX_JSON_DEPTH

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("convstore.http")

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}
_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class ProblemField(BaseModel):
    field: str = Field(description="Dotted path of the rejected field, e.g. `tool_calls.0.name`.")
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(description="Stable URN identifying the kind of problem.")
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    errors: list[ProblemField] | None = None


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": f"urn:convstore:problem:{code.replace('_', '-')}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = [{"field": e.field, "message": e.message, "type": e.type} for e in errors]
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        source, parts = parts[0], parts[1:]
        if source == "header" and parts:
            return parts[0]
    return ".".join(parts) or "body"


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        path = _field_path(tuple(err.get("loc", ())))
        if err.get("type") == "json_invalid":  # its loc ends in a character offset, not a field
            path = "body"
            reason = (err.get("ctx") or {}).get("error")
            message = f"not valid JSON: {reason}" if reason else "not valid JSON"
        elif path == "body" and ": " in message:  # cross-field rules name their field
            path, _, message = message.partition(": ")
        errors.append(FieldError(path, message, str(err.get("type", "invalid"))))
    return errors


async def _convstore_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConvstoreError)
    headers = None
    if isinstance(exc, InvalidCredentials):
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    elif isinstance(exc, InProgress):
        headers = {"Retry-After": str(exc.retry_after)}
    errors = list(exc.errors) if isinstance(exc, InvalidInput) else None
    if exc.status_code >= 500:
        log.warning("%s: %s", type(exc).__name__, exc.message)
    elif isinstance(exc, InvalidCredentials):  # failed sign-ins and bad tokens, for audits
        log.info("authentication failed: %s", exc.message)
    return problem(exc.status_code, exc.code, exc.message, errors=errors, headers=headers)


async def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return problem(422, "invalid_input", detail, errors=errors)


def _allowed_methods(request: Request) -> str:
    """Every method served at the request's path (Starlette's 405 names only the first
    route that matched the path, e.g. GET but not POST)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(route.methods or ())
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    code = _CODES.get(exc.status_code, "http_error")
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers["Allow"] = allowed
    if exc.status_code == 401:
        code = "invalid_credentials"
        headers.setdefault("WWW-Authenticate", "Bearer")
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    return problem(exc.status_code, code, detail, headers=headers or None)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "internal_error", "an unexpected error occurred; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ConvstoreError, _convstore_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI entry of a problem answer with ``status``."""
    return {
        "model": Problem,
        "description": description or _TITLES[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem_response(401),
    404: problem_response(404),
    422: problem_response(
        422,
        f"Invalid input: `errors` names each rejected field. A body that is not JSON, not "
        f"UTF-8, or nested deeper than {MAX_JSON_DEPTH} levels is named `body`.",
    ),
    429: problem_response(429),
}
"""The problems every authenticated route can answer, for the OpenAPI document."""

CONFLICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: problem_response(
        409,
        "Conflict: the write collides with what is stored (a taken email, a tool call answered "
        "twice), or a request with the same `Idempotency-Key` is still running.",
    )
}
"""For the routes whose writes can collide."""
