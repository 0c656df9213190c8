"""``Idempotency-Key`` on POSTs that create: the first response is stored with the write and
replayed for 24 hours (``Idempotent-Replayed: true``); the same key with another body is a 422;
a duplicate while the first is still running is a 409. Keys are per user."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.auth.repository import IdempotencyRepository
from convstore.errors import ConvstoreError, InProgress, InvalidInput
from convstore.kit.types import utc_now

KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
"""1 to 255 visible ASCII characters (a UUID is the usual choice)."""
CLEANUP_EVERY = 64
"""Roughly one claim in this many also deletes the user's expired keys."""


class Replay(ConvstoreError):
    """The stored first response to this key; the handler sends it back as it was."""

    def __init__(self, status_code: int, body: str, location: str | None) -> None:
        super().__init__("replayed")
        self.status_code = status_code
        self.body = body
        self.location = location


class Idempotency:
    """The key of one request, if it carries one."""

    def __init__(self, request: Request, key: str | None, ttl_seconds: int) -> None:
        self.key = key
        self._path = request.url.path
        self._ttl = timedelta(seconds=ttl_seconds)
        self._repo: IdempotencyRepository | None = None

    async def claim(self, conn: AsyncConnection, user_id: uuid.UUID, body: BaseModel) -> None:
        """Claim the key in the request's transaction, or raise what the duplicate gets."""
        if self.key is None:
            return
        canonical = json.dumps(
            [self._path, body.model_dump(mode="json", exclude_unset=True)], sort_keys=True
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        repo = self._repo = IdempotencyRepository(conn, user_id)
        now = utc_now()
        if uuid.uuid4().int % CLEANUP_EVERY == 0:
            await repo.delete_older_than(now - self._ttl)
        if await repo.claim(self.key, digest, now):
            return
        row = await repo.get(self.key)
        if row is not None and row["created_at"] < now - self._ttl:
            await repo.forget(self.key)  # expired: this request starts afresh
            if await repo.claim(self.key, digest, now):
                return
            row = await repo.get(self.key)
        if row is None:
            raise InProgress("a request with this Idempotency-Key is in progress; retry shortly")
        if row["request_hash"] != digest:
            raise InvalidInput(
                "this key was used with a different request", field="Idempotency-Key"
            )
        if row["status_code"] is None:
            raise InProgress("a request with this Idempotency-Key is in progress; retry shortly")
        raise Replay(row["status_code"], row["response_body"], row["location"])

    async def record(self, status_code: int, body: BaseModel, location: str | None) -> None:
        """Store the response of the claimed request (same transaction as its write)."""
        if self.key is None or self._repo is None:
            return
        await self._repo.record(self.key, status_code, body.model_dump_json(), location)


async def idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(pattern=KEY_PATTERN, description="Makes a create safe to retry (kept 24 h)."),
    ] = None,
) -> str | None:
    return idempotency_key


def replay_headers(exc: Replay) -> dict[str, Any]:
    headers = {"Idempotent-Replayed": "true"}
    if exc.location:
        headers["Location"] = exc.location
    return headers
