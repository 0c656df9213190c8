"""The request a log line is written in: its id and, once authenticated, its user.

:class:`ResponseHeadersMiddleware` opens a :class:`RequestContext` for each HTTP request; the
authentication of that request fills in the user. :class:`ContextFilter` copies both onto every
log record written while the request runs, whichever logger writes it.
"""

from __future__ import annotations

import logging
import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(slots=True)
class RequestContext:
    request_id: str
    user_id: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("convstore_request", default=None)


def open_request(request_id: str) -> Token[RequestContext | None]:
    """Start the context of a request (undo with :func:`close_request`)."""
    return _current.set(RequestContext(request_id))


def close_request(token: Token[RequestContext | None]) -> None:
    _current.reset(token)


def current() -> RequestContext | None:
    return _current.get()


def bind_user(user_id: uuid.UUID) -> None:
    """Name the acting user of the current request (a no-op outside a request). The context is
    mutated, not replaced, so the middleware that opened it sees the user after the call."""
    ctx = _current.get()
    if ctx is not None:
        ctx.user_id = str(user_id)


class ContextFilter(logging.Filter):
    """Adds ``request_id`` and ``user_id`` (None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _current.get()
        record.request_id = ctx.request_id if ctx else None
        record.user_id = ctx.user_id if ctx else None
        return True
