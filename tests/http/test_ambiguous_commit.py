"""An ambiguous commit: the client sends an idempotent create to a live
server and goes away without reading the answer, so it cannot know whether the write happened.
Its retry with the same ``Idempotency-Key`` gets the stored response and exactly one row exists.

Two ways to go away: a reset (``SO_LINGER`` 0: RST, the response discarded) once the write is
committed, whose retry must be a replay; and closing right after sending (FIN), where the first
request may still be running (the retry gets 409 and tries again), may have committed (replay),
or may have been dropped with the connection before it wrote (the retry writes).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text

from convstore import Store
from convstore.app import create_app
from tests.http.helpers import API
from tests.support.api import Account, api_settings, register
from tests.support.live import serving

WAIT = 15.0


def _request(host: str, path: str, account: Account, key: str, body: dict[str, str]) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {account.access_token}\r\n"
        f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + payload


async def _stored_status(store: Store, key: str) -> int | None:
    stmt = text("SELECT status_code FROM idempotency_keys WHERE key = :key")
    async with store.db.engine.connect() as conn:
        value: int | None = (await conn.execute(stmt, {"key": key})).scalar_one_or_none()
    return value


async def _count(store: Store, title: str) -> int:
    stmt = text("SELECT count(*) FROM tasks WHERE title = :title")
    async with store.db.engine.connect() as conn:
        return int((await conn.execute(stmt, {"title": title})).scalar_one())


@pytest.mark.parametrize("leave", ["close right after sending", "reset after the commit"])
async def test_a_retry_after_an_unread_answer_gets_the_stored_response(
    database_url: str, store: Store, leave: str
) -> None:
    app = create_app(api_settings(database_url))
    async with serving(app, lifespan="on") as base, httpx.AsyncClient(base_url=base) as client:
        account = await register(client)
        key, title = f"f5-{uuid.uuid4()}", f"ambiguous {uuid.uuid4().hex[:8]}"
        url = urlsplit(base)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(_request(url.netloc, f"{API}/tasks", account, key, {"title": title}))
        await writer.drain()
        if leave == "reset after the commit":
            async with asyncio.timeout(WAIT):
                while True:  # committed: the stored response is visible
                    if await _stored_status(store, key) is not None:
                        break
                    await asyncio.sleep(0.02)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()  # the answer is never read
        await writer.wait_closed()

        deadline = time.monotonic() + WAIT
        while True:
            retry = await client.post(
                f"{API}/tasks",
                json={"title": title},
                headers={**account.headers, "Idempotency-Key": key},
            )
            if retry.status_code != 409 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)  # the first is still in flight

    assert retry.status_code == 201, retry.text
    if leave == "reset after the commit":
        assert retry.headers.get("idempotent-replayed") == "true"
    # Closing right after sending may also abort the first request before it wrote (the server
    # sees the disconnect while reading the body): then the retry is the first write. Either
    # way the client ends with one answer for one row.
    assert retry.json()["title"] == title
    assert retry.headers["location"] == f"{API}/tasks/{retry.json()['id']}"
    assert await _count(store, title) == 1
