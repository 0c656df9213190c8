"""ASGI middleware: request body and WebSocket message size limit (413, close 1009), and
request ids with the headers every response carries."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from convstore.assistant.schemas import ErrorFrame
from convstore.http.errors import PROBLEM_JSON
from convstore.kit import context


class _TooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit; rendered as a 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body exceeds {max_bytes} bytes")


class BodyLimitMiddleware:
    """Refuse bodies above ``max_bytes`` with 413, by Content-Length or while streaming, and
    WebSocket messages above it with an error frame and close code 1009.

    ``convstore serve`` sets the server's own bounds too (uvicorn's ``ws_max_size``, which stops
    reading a frame at its header); this check holds under any server.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.app(scope, self._bounded_frames(receive, send), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        if declared is not None and b"transfer-encoding" not in headers:
            # The server hands on no more than the length the request declares (what frames
            # its body): nothing to count.
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    def _bounded_frames(self, receive: Receive, send: Send) -> Receive:
        """``receive`` that hands the application no message above ``max_bytes``: it closes the
        socket (1009) and tells the application the client went away, before any parsing."""

        async def bounded() -> Message:
            message = await receive()
            if message["type"] != "websocket.receive" or not self._too_large(message):
                return message
            detail = f"a message must not exceed {self.max_bytes} bytes"
            frame = ErrorFrame(code="message_too_large", detail=detail, retryable=False)
            await send({"type": "websocket.send", "text": frame.model_dump_json()})
            await send({"type": "websocket.close", "code": 1009, "reason": "message too large"})
            return {"type": "websocket.disconnect", "code": 1009, "reason": "message too large"}

        return bounded

    def _too_large(self, message: Message) -> bool:
        text = message.get("text")
        if text is None:
            return len(message.get("bytes") or b"") > self.max_bytes
        if len(text) <= self.max_bytes // 4:  # a character is at most 4 bytes of UTF-8
            return False
        return (
            len(text) > self.max_bytes
            or len(text.encode("utf-8", "surrogatepass")) > self.max_bytes
        )

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "type": "urn:convstore:problem:body-too-large",
                "title": "Request body too large",
                "status": 413,
                "code": "body_too_large",
                "detail": f"the request body exceeds {self.max_bytes} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,128}")
"""A client's request id is echoed when it is 1 to 128 visible ASCII characters (a header
value may not carry controls); otherwise the response gets a fresh one."""


class ResponseHeadersMiddleware:
    """The outermost of convstore's layers, so that it sees every response, the ones other
    middleware send on their own (the 413) included:

    - echo the client's ``X-Request-ID`` (or make one) on every response, and hold it in the
      request's log context (:mod:`convstore.kit.context`) while the request runs;
    - add ``X-Content-Type-Options: nosniff``: a browser must never guess a type other than
      the declared one (JSON, problem+json, the docs' HTML).

    One layer for both: each layer costs every request a call and a wrapped ``send``.
    """

    HEADERS = ((b"x-content-type-options", b"nosniff"),)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex.encode()
        added = ((b"x-request-id", request_id), *self.HEADERS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = [
                    h for h in message.get("headers", []) if h[0].lower() not in _REPLACED
                ]
                headers.extend(added)
                message = {**message, "headers": headers}
            await send(message)

        token = context.open_request(request_id.decode("ascii"))
        try:
            await self.app(scope, receive, with_headers)
        finally:
            context.close_request(token)


_REPLACED = frozenset(name for name, _ in ResponseHeadersMiddleware.HEADERS)
