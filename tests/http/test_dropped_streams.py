"""Streaming chat turns whose client drops the TCP connection (RST) at every moment — before
the status line, right after it, a few milliseconds later — against a real ``convstore serve``.

Before the fix, on SQLite, after 40–60 such drops the write lock stayed held by abandoned
connections: every write of every user answered 503 after the busy wait, for good, while
``/readyz`` kept saying ready.
"""

from __future__ import annotations

import json
import random
import socket
import sqlite3
import struct
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.http.test_serve import start_serve, stop, wait_until_up
from tests.support.api import PASSWORD
from tests.support.databases import fresh_database

DROPS = 200
PARALLEL = 4
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _turn_request(token: str) -> bytes:
    body = json.dumps({"content": "add buy milk tomorrow #home", "stream": True}).encode()
    head = (
        "POST /api/v1/chat/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _drop(port: int, request: bytes, moment: int, rng: random.Random) -> None:
    """Send a streaming turn and reset the connection at one of four moments."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        sock.sendall(request)
        if moment == 1:  # before the status line could arrive
            time.sleep(rng.random() * 0.002)
        elif moment == 2:  # right after the status line
            sock.recv(12)
        elif moment == 3:  # a few ms into the stream
            sock.recv(12)
            time.sleep(rng.random() * 0.02)


def _storm(port: int, token: str) -> None:
    request = _turn_request(token)
    rngs = [random.Random(seed) for seed in range(DROPS)]
    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(lambda i: _drop(port, request, i % 4, rngs[i]), range(DROPS)))


def _replies_streaming(client: httpx.Client, headers: dict[str, str]) -> int:
    streaming, cursor = 0, None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/conversations", params=params, headers=headers).json()
        for conv in page["items"]:
            messages = client.get(
                f"/api/v1/conversations/{conv['id']}/messages", headers=headers
            ).json()["items"]
            streaming += sum(m["status"] == "streaming" for m in messages)
        if not page["has_more"]:
            return streaming
        cursor = page["next_cursor"]


@pytest.fixture(params=BACKENDS)
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each backend (``serve`` migrates it)."""
    async with fresh_database(request.param, tmp_path) as database_url:
        yield database_url


def test_dropped_streaming_turns_leave_every_writer_working(url: str, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    proc, port = start_serve(
        tmp_path,
        log,
        CONVSTORE_DATABASE_URL=url,
        CONVSTORE_SQLITE_BUSY_TIMEOUT_MS="1000",  # a held lock shows as a 503 within 1 s
        CONVSTORE_RATE_LIMIT_ENABLED="false",
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_until_up(client, proc, log)
            creds = {"email": f"storm-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
            assert client.post("/api/v1/auth/register", json=creds).status_code == 201
            token = client.post("/api/v1/auth/login", json=creds).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}

            _storm(port, token)

            # Every write of every user goes through, on a new account too.
            other = {**creds, "email": f"after-{uuid.uuid4().hex[:8]}@example.com"}
            assert client.post("/api/v1/auth/register", json=other).status_code == 201
            task = client.post("/api/v1/tasks", json={"title": "after"}, headers=headers)
            assert task.status_code == 201, task.text
            conv = client.post("/api/v1/conversations", json={}, headers=headers)
            assert conv.status_code == 201, conv.text
            append = client.post(
                f"{conv.headers['location']}/messages",
                json={"role": "user", "content": "still here"},
                headers=headers,
            )
            assert append.status_code == 201, append.text
            turn = client.post(
                "/api/v1/chat/messages", json={"content": "what is left?"}, headers=headers
            )
            assert turn.status_code == 201, turn.text
            assert client.get("/readyz").status_code == 200

            deadline = time.monotonic() + 10  # replies still being finalised
            while _replies_streaming(client, headers) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _replies_streaming(client, headers) == 0
    finally:
        stop(proc)
    output = log.read_text()
    assert "Task was destroyed" not in output, output
    assert "database is locked" not in output, output
    assert "Traceback" not in output, output


def test_readyz_fails_while_the_sqlite_write_lock_is_held(tmp_path: Path) -> None:
    """Readiness means the database can take a write, not merely answer a read."""
    path = tmp_path / "ready.db"
    log = tmp_path / "serve.log"
    proc, port = start_serve(
        tmp_path,
        log,
        CONVSTORE_DATABASE_URL=f"sqlite:///{path}",
        CONVSTORE_READINESS_TIMEOUT_SECONDS="0.5",
        CONVSTORE_SQLITE_BUSY_TIMEOUT_MS="200",
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_up(client, proc, log)
            assert client.get("/readyz").status_code == 200
            holder = sqlite3.connect(path)
            holder.execute("BEGIN IMMEDIATE")
            try:
                refused = client.get("/readyz")
                assert refused.status_code == 503
                assert refused.json()["code"] == "database_unavailable"
                assert client.get("/healthz").status_code == 200  # alive, just not ready
            finally:
                holder.rollback()
                holder.close()
            assert client.get("/readyz").status_code == 200
    finally:
        stop(proc)
