"""Keyset pagination: the ``Page`` envelope and opaque cursors bound to their list."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, Field

from convstore.errors import InvalidInput
from convstore.kit.schemas import to_utc

T = TypeVar("T")

MAX_PAGE_SIZE = 100
"""The most items one page may carry; the library and the API refuse larger pages."""
MAX_CURSOR_CHARS = 512
"""Cursors are short; anything longer is refused before decoding."""


class Page(BaseModel, Generic[T]):
    """One page of a list: ``next_cursor`` continues it while ``has_more`` is true."""

    items: list[T]
    next_cursor: str | None = Field(default=None, description="Opaque; pass back as `cursor`.")
    has_more: bool = False


def check_limit(limit: int, *, maximum: int = MAX_PAGE_SIZE) -> int:
    """Validate a page size (1..maximum)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise InvalidInput(f"must be an integer from 1 to {maximum}", field="limit")
    return limit


def encode_cursor(scope: str, key: list[Any]) -> str:
    """An opaque cursor for position ``key`` in the list identified by ``scope``."""
    raw = orjson.dumps({"s": scope, "k": key})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, scope: str) -> list[Any]:
    """The position stored in ``cursor``.

    Raises:
        InvalidInput: the cursor is malformed or belongs to another list (or other filters).
    """
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidInput("malformed cursor", field="cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidInput("malformed cursor", field="cursor") from None
    if not isinstance(data, dict) or not isinstance(data.get("k"), list):
        raise InvalidInput("malformed cursor", field="cursor")
    if data.get("s") != scope:
        raise InvalidInput("cursor belongs to a different list", field="cursor")
    key: list[Any] = data["k"]
    return key


def encode_keyset(scope: str, at: datetime, last_id: uuid.UUID) -> str:
    """A cursor for a list ordered by (timestamp, id)."""
    return encode_cursor(scope, [at.isoformat(), str(last_id)])


def decode_keyset(cursor: str, scope: str) -> tuple[datetime, uuid.UUID]:
    """The (timestamp, id) position of a cursor made by :func:`encode_keyset`.

    Raises:
        InvalidInput: malformed, from another list, or carrying a timestamp without a zone or
            one that leaves the calendar once converted to UTC (convstore writes UTC only).
    """
    key = decode_cursor(cursor, scope)
    try:
        at, last_id = datetime.fromisoformat(key[0]), uuid.UUID(key[1])
        if len(key) != 2 or at.tzinfo is None:
            raise ValueError("not a keyset position")
        return to_utc(at), last_id
    except (IndexError, TypeError, ValueError):
        raise InvalidInput("malformed cursor", field="cursor") from None
