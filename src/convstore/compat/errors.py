"""OpenAI's error body on ``/v1``: ``{"error": {"message", "type", "param", "code"}}``.

The rest of the application answers errors as RFC 9457 problems (http/errors.py), raised from
services, dependencies and middleware alike. :class:`OpenAIErrors` translates every problem
answered under ``/v1/`` in one place, so the ``openai`` client maps each to its exception class:
invalid input is a 400 naming ``param`` (OpenAI has no 422 for bad parameters), and a 409 says
whether a retry can help (``x-should-retry``: only for a request still running under the same
``Idempotency-Key``), since the client retries every 409 otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convstore.http.errors import PROBLEM_JSON

PREFIX = "/v1/"


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """OpenAI's error body."""

    error: OpenAIErrorDetail


def _error_type(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error(status: int, problem: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The status and OpenAI error body for a problem answered with ``status``."""
    fields = problem.get("errors") or []
    code = problem.get("code")
    if status == 401:
        code = "invalid_api_key"
    elif status == 429:
        code = "rate_limit_exceeded"
    if status == 422:
        status = 400
    error = {
        "message": str(problem.get("detail") or problem.get("title") or "error"),
        "type": _error_type(status),
        "param": fields[0].get("field") if fields else None,
        "code": code,
    }
    return status, {"error": error}


def _is_problem(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(PROBLEM_JSON.encode())
        for name, value in headers
    )


class OpenAIErrors:
    """ASGI middleware: problems answered under ``/v1/`` leave as OpenAI error bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def translate(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and _is_problem(message["headers"]):
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            try:
                problem = json.loads(b"".join(chunks))
            except ValueError:
                problem = {}
            status, body = openai_error(start["status"], problem)
            encoded = json.dumps(body, ensure_ascii=False).encode()
            headers = [
                (name, value)
                for name, value in start["headers"]
                if name.lower() not in (b"content-type", b"content-length")
            ]
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(encoded)).encode()),
            ]
            if status == 409:
                retry = problem.get("code") == "in_progress"
                headers.append((b"x-should-retry", b"true" if retry else b"false"))
            await send({**start, "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": encoded})

        await self.app(scope, receive, translate)
