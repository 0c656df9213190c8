"""W1–W6 over HTTP: a real ``convstore serve`` on loopback and a concurrent httpx client.

Latency is measured at concurrency 1; throughput at ``Params.http_concurrency``. The server's
resident memory is sampled from /proc throughout, and its peak (``VmHWM``) reported: over the
whole run, and over the workloads alone (the peak is reset after the logins, whose Argon2 hashes
take 64 MiB each while they run).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx

from bench.dataset import BENCH_PASSWORD, HEAVY_EMAIL
from bench.fixture import USER_TEXT, W6_TAG, Fixture, Params, check_w5, pg_plain
from bench.library import batch_items
from bench.procinfo import peak_rss_mb, reset_peak_rss, rss_mb
from bench.stats import Samples, timed, timed_concurrent

LOGIN_USERS = 16
"""Regular users the client logs in as (W1, W2 pick among their conversations)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def server(
    url: str, log: Path, args: tuple[str, ...] = (), extra_env: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, int]]:
    """``convstore serve`` (plus ``args`` and ``extra_env``) in a subprocess; yields (base URL,
    pid)."""
    port = _free_port()
    env = {
        **os.environ,
        "CONVSTORE_DATABASE_URL": url,
        "CONVSTORE_ENV": "development",
        "CONVSTORE_SECRET_KEY": secrets.token_urlsafe(48),
        "CONVSTORE_RATE_LIMIT_ENABLED": "false",
        "CONVSTORE_ACCESS_TOKEN_TTL_SECONDS": "86400",
        "CONVSTORE_AUTO_MIGRATE": "false",
    }
    env.update(extra_env or {})
    exe = Path(sys.executable).with_name("convstore")
    cmd = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    sink = _open_log(log)
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=sink, stderr=asyncio.subprocess.STDOUT
    )
    sink.close()
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            deadline = time.monotonic() + 30
            while True:
                if proc.returncode is not None:
                    raise RuntimeError(f"convstore serve exited; see {log}")
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get(f"{base}/healthz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"convstore serve did not start; see {log}")
                await asyncio.sleep(0.1)
        yield base, proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _open_log(log: Path) -> IO[bytes]:
    return log.open("wb")


async def _emails(fx: Fixture) -> dict[uuid.UUID, str]:
    """The email of each owner among the fixture's conversations (to log in as them)."""
    owners = list(dict.fromkeys(uid for _, uid in fx.conversations))[:LOGIN_USERS]
    if fx.backend == "postgresql":
        conn = await asyncpg.connect(pg_plain(fx.url))
        try:
            rows = await conn.fetch("SELECT id, email FROM users WHERE id = ANY($1)", owners)
        finally:
            await conn.close()
        return {r["id"]: r["email"] for r in rows}
    import sqlite3

    from bench.fixture import sqlite_file

    db = sqlite3.connect(sqlite_file(fx.url))
    try:
        marks = ",".join("?" * len(owners))
        found = db.execute(
            f"SELECT id, email FROM users WHERE id IN ({marks})", [o.hex for o in owners]
        ).fetchall()
    finally:
        db.close()
    return {uuid.UUID(i): e for i, e in found}


async def _login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": BENCH_PASSWORD})
    r.raise_for_status()
    return {"authorization": f"Bearer {r.json()['access_token']}"}


class _Sampler:
    """Samples the server's RSS every 100 ms while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            self.samples.append(rss_mb(self.pid))
            await asyncio.sleep(0.1)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def run(fx: Fixture, p: Params, log: Path) -> dict[str, Any]:
    async with server(fx.url, log) as (base, pid):
        sampler = _Sampler(pid)
        sampler.start()
        marks: dict[str, Any] = {}

        def after_logins() -> None:
            marks["logins"] = peak_rss_mb(pid)
            marks["reset"] = reset_peak_rss(pid)

        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
            try:
                out = await _workloads(client, fx, p, after_logins)
            finally:
                await sampler.stop()
        last_peak = peak_rss_mb(pid)
        out["server_rss_mb"] = {
            "peak": round(max(last_peak, marks.get("logins", 0.0)), 1),
            "peak_after_logins": round(last_peak, 1) if marks.get("reset") else None,
            "max_sampled": round(max(sampler.samples, default=0.0), 1),
            "last": round(sampler.samples[-1], 1) if sampler.samples else None,
        }
    return out


async def _workloads(
    client: httpx.AsyncClient, fx: Fixture, p: Params, after_logins: Callable[[], None]
) -> dict[str, Any]:
    emails = await _emails(fx)
    # One login per user, one at a time (each is an Argon2 verify, and a rehash when the
    # dataset's hash has other parameters than the server's).
    headers = {uid: await _login(client, email) for uid, email in emails.items()}
    heavy = await _login(client, HEAVY_EMAIL)
    after_logins()
    convs = [(c, u) for c, u in fx.conversations if u in headers]
    rng = fx.rng

    async def ok(resp: Awaitable[httpx.Response]) -> httpx.Response:
        r = await resp
        if r.status_code >= 400:
            raise RuntimeError(f"{r.request.method} {r.request.url}: {r.status_code} {r.text}")
        return r

    async def w1(*_: int) -> None:
        cid, uid = rng.choice(convs)
        await ok(
            client.post(
                f"/api/v1/conversations/{cid}/messages",
                json={"role": "user", "content": USER_TEXT},
                headers=headers[uid],
            )
        )

    async def w2(*_: int) -> None:
        cid, uid = rng.choice(convs)
        await ok(
            client.get(
                f"/api/v1/conversations/{cid}/messages", params={"limit": 50}, headers=headers[uid]
            )
        )

    async def w3(*_: int) -> None:
        await ok(client.get("/api/v1/conversations", params={"limit": 20}, headers=heavy))

    async def w6(*_: int) -> None:
        await ok(
            client.get(
                "/api/v1/tasks",
                params={"completed": "false", "tag": W6_TAG, "limit": 20},
                headers=heavy,
            )
        )

    out: dict[str, Any] = {}
    c16 = p.http_concurrency
    per = max(1, p.http_requests // c16)
    ops: dict[str, tuple[Callable[..., Awaitable[None]], int]] = {
        "W1": (w1, p.writes),
        "W2": (w2, p.reads),
        "W3": (w3, p.reads),
        "W6": (w6, p.reads),
    }
    for name, (op, count) in ops.items():
        c1 = await timed(op, count, warmup=p.warmup)
        cn = await timed_concurrent(op, c16, per)
        out[name] = {"c1": c1.summary(), f"c{c16}": cn.summary()}

    writer = headers.get(fx.writer) or next(iter(headers.values()))
    out["W4"] = {f"c{c16}": (await _w4(client, writer, p, ok)).summary()}
    out["W5"] = await _w5(client, writer, fx, p, ok)
    return out


async def _new_conversation(client: httpx.AsyncClient, heavy: dict[str, str], title: str) -> str:
    r = await client.post("/api/v1/conversations", json={"title": title}, headers=heavy)
    r.raise_for_status()
    conv_id: str = r.json()["id"]
    return conv_id


async def _w4(client: httpx.AsyncClient, heavy: dict[str, str], p: Params, ok: Any) -> Samples:
    """No batch endpoint: ``batch_total`` single appends, ``http_concurrency`` at a time, each
    client into its own conversation."""
    c16 = p.http_concurrency
    convs = [await _new_conversation(client, heavy, f"W4 bulk {i}") for i in range(c16)]
    items = batch_items(p.batch_size)

    async def append(worker: int, i: int) -> None:
        await ok(
            client.post(
                f"/api/v1/conversations/{convs[worker]}/messages",
                json=items[i % len(items)],
                headers=heavy,
            )
        )

    return await timed_concurrent(append, c16, max(1, p.batch_total // c16))


async def _w5(
    client: httpx.AsyncClient, heavy: dict[str, str], fx: Fixture, p: Params, ok: Any
) -> dict[str, Any]:
    shared = await _new_conversation(client, heavy, "W5 concurrent")

    async def append(worker: int, i: int) -> None:
        await ok(
            client.post(
                f"/api/v1/conversations/{shared}/messages",
                json={"role": "user", "content": USER_TEXT, "metadata": {"w": worker, "n": i}},
                headers=heavy,
            )
        )

    result: dict[str, Any] = (await timed_concurrent(append, p.writers, p.per_writer)).summary()
    result["check"] = await check_w5(fx.backend, fx.url, uuid.UUID(shared), p.writers, p.per_writer)
    return result
