"""HTTP: a real ``convstore serve`` (rate limits and access log off) against the bare app
(bench/bareapp.py: the same tables, one session lookup per request, orjson), both on loopback,
driven by ``wrk`` so that the load generator is a C program and not a Python client sharing
the server's core.

For each route (the last-50 read, the append) and each server: requests/s at
``Params.http_concurrency`` connections and the p50 at one connection, each for
``Params.http_seconds`` after a short warm-up, the two servers taking turns measurement by
measurement. With ``pin`` (and ``taskset`` present, and two CPUs or more), each server runs on
the last CPU and wrk on the first, both servers the same way.

Each server's resident memory is sampled from /proc throughout and its peak (``VmHWM``)
reported, over the whole run and over the workloads (the peak is reset after convstore's
logins, whose Argon2 verifications take 64 MiB each while they run). Then 8 writers append
through each server at once and the W5 check reads the conversation back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx

from bench.dataset import BENCH_PASSWORD
from bench.fixture import USER_TEXT, Fixture, Params, check_w5, pg_plain, sqlite_file
from bench.impl import marked
from bench.procinfo import peak_rss_mb, reset_peak_rss, rss_mb

LOGIN_USERS = 16
"""Regular users the clients act as (their conversations are the requests' targets)."""
LUA = Path(__file__).with_name("wrk") / "requests.lua"
ROUTES = ("read", "append")
SERVERS = ("convstore", "bare")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pinning(pin: bool) -> tuple[list[str], list[str], str | None]:
    """The command prefixes for the servers and for wrk, and what was done."""
    cpus = os.cpu_count() or 1
    if not pin or cpus < 2 or not shutil.which("taskset"):
        return [], [], None
    last = str(cpus - 1)
    return ["taskset", "-c", last], ["taskset", "-c", "0"], f"servers on CPU {last}, wrk on CPU 0"


@contextlib.asynccontextmanager
async def server(
    cmd: Sequence[str], env: dict[str, str], log: Path
) -> AsyncIterator[tuple[str, int]]:
    """Run ``cmd`` (which must listen on the port in ``env['BENCH_PORT']``) until it answers
    ``/healthz``; yields (base URL, pid)."""
    sink = _open_log(log)
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=sink, stderr=asyncio.subprocess.STDOUT
    )
    sink.close()
    base = f"http://127.0.0.1:{env['BENCH_PORT']}"
    try:
        async with httpx.AsyncClient() as probe:
            deadline = time.monotonic() + 30
            while True:
                if proc.returncode is not None:
                    raise RuntimeError(f"{cmd[0]} exited; see {log}")
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get(f"{base}/healthz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start; see {log}")
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


def convstore_command(url: str, prefix: list[str]) -> tuple[list[str], dict[str, str]]:
    port = _free_port()
    env = {
        **os.environ,
        "BENCH_PORT": str(port),
        "CONVSTORE_DATABASE_URL": url,
        "CONVSTORE_ENV": "development",
        "CONVSTORE_SECRET_KEY": secrets.token_urlsafe(48),
        "CONVSTORE_RATE_LIMIT_ENABLED": "false",
        "CONVSTORE_ACCESS_TOKEN_TTL_SECONDS": "86400",
        "CONVSTORE_AUTO_MIGRATE": "false",
    }
    exe = Path(sys.executable).with_name("convstore")
    cmd = [*prefix, str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return [*cmd, "--no-access-log"], env


def bare_command(url: str, prefix: list[str]) -> tuple[list[str], dict[str, str]]:
    port = _free_port()
    root = str(Path(__file__).resolve().parent.parent)
    env = {
        **os.environ,
        "BENCH_PORT": str(port),
        "BENCH_BARE_DATABASE_URL": url,
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    cmd = [*prefix, sys.executable, "-m", "uvicorn", "--factory", "bench.bareapp:app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--proxy-headers"]
    return cmd, env


# --- users and tokens -------------------------------------------------------------------


async def _emails(fx: Fixture) -> dict[uuid.UUID, str]:
    """The email of each owner among the fixture's conversations (to log in as them)."""
    owners = list(dict.fromkeys(uid for _, uid in fx.conversations))[:LOGIN_USERS]
    if fx.writer not in owners:
        owners.append(fx.writer)
    if fx.backend == "postgresql":
        conn = await asyncpg.connect(pg_plain(fx.url))
        try:
            rows = await conn.fetch("SELECT id, email FROM users WHERE id = ANY($1)", owners)
        finally:
            await conn.close()
        return {r["id"]: r["email"] for r in rows}
    db = sqlite3.connect(sqlite_file(fx.url))
    try:
        marks = ",".join("?" * len(owners))
        found = db.execute(
            f"SELECT id, email FROM users WHERE id IN ({marks})", [o.hex for o in owners]
        ).fetchall()
    finally:
        db.close()
    return {uuid.UUID(i): e for i, e in found}


async def _login(client: httpx.AsyncClient, email: str) -> str:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": BENCH_PASSWORD})
    r.raise_for_status()
    token: str = r.json()["access_token"]
    return token


async def bare_sessions(fx: Fixture, users: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """An opaque token per user in ``bench_sessions`` (the bare app's auth)."""
    from bench.bareapp import SESSIONS_PG, SESSIONS_SQLITE

    tokens = {u: secrets.token_urlsafe(32) for u in users}
    if fx.backend == "postgresql":
        conn = await asyncpg.connect(pg_plain(fx.url))
        try:
            await conn.execute(SESSIONS_PG)
            await conn.executemany(
                "INSERT INTO bench_sessions (token, user_id) VALUES ($1, $2)",
                [(t, u) for u, t in tokens.items()],
            )
        finally:
            await conn.close()
        return tokens
    db = sqlite3.connect(sqlite_file(fx.url))
    try:
        db.execute(SESSIONS_SQLITE)
        db.executemany(
            "INSERT INTO bench_sessions (token, user_id) VALUES (?, ?)",
            [(t, u.hex) for u, t in tokens.items()],
        )
        db.commit()
    finally:
        db.close()
    return tokens


async def drop_sessions(fx: Fixture) -> None:
    if fx.backend == "postgresql":
        conn = await asyncpg.connect(pg_plain(fx.url))
        try:
            await conn.execute("DROP TABLE IF EXISTS bench_sessions")
        finally:
            await conn.close()
        return
    db = sqlite3.connect(sqlite_file(fx.url))
    try:
        db.execute("DROP TABLE IF EXISTS bench_sessions")
        db.commit()
    finally:
        db.close()


# --- wrk ----------------------------------------------------------------------------------


def request_file(
    directory: Path,
    name: str,
    route: str,
    convs: Sequence[tuple[uuid.UUID, uuid.UUID]],
    tokens: dict[uuid.UUID, str],
    count: int = 2_000,
) -> Path:
    """``count`` requests of ``route`` to random conversations, each with its owner's token."""
    rng = random.Random(11)
    body = json.dumps({"role": "user", "content": USER_TEXT})
    lines = []
    for _ in range(count):
        cid, uid = rng.choice(convs)
        path = f"/api/v1/conversations/{cid}/messages"
        if route == "read":
            lines.append(f"GET\t{path}?limit=50\t{tokens[uid]}\t")
        else:
            lines.append(f"POST\t{path}\t{tokens[uid]}\t{body}")
    path_ = directory / f"{name}-{route}.tsv"
    path_.write_text("\n".join(lines) + "\n")
    return path_


async def wrk(
    base: str, requests: Path, connections: int, seconds: float, prefix: list[str]
) -> dict[str, Any]:
    """One wrk run; its figures (requests/s, latency percentiles in ms, errors)."""
    cmd = [*prefix, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    cmd += ["--timeout", "10s", "-s", str(LUA), base, "--", str(requests)]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    line = next((x for x in out.decode().splitlines() if x.startswith('{"requests"')), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.decode()[-300:]}")
    raw = json.loads(line)
    seconds_run = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return {
        "connections": connections,
        "requests": raw["requests"],
        "req_per_s": round(raw["requests"] / seconds_run, 1) if seconds_run else None,
        "p50_ms": round(raw["p50_us"] / 1e3, 3),
        "p90_ms": round(raw["p90_us"] / 1e3, 3),
        "p99_ms": round(raw["p99_us"] / 1e3, 3),
        "mean_ms": round(raw["mean_us"] / 1e3, 3),
        "non_2xx": raw["non_2xx"],
        "socket_errors": errors,
    }


class _Sampler:
    """Samples a server's RSS every 100 ms while it runs."""

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


def _memory(pid: int, sampler: _Sampler, logins_peak: float, reset: bool) -> dict[str, Any]:
    last_peak = peak_rss_mb(pid)
    return {
        "peak": round(max(last_peak, logins_peak), 1),
        "peak_workloads": round(last_peak, 1) if reset else None,
        "max_sampled": round(max(sampler.samples, default=0.0), 1),
        "last": round(sampler.samples[-1], 1) if sampler.samples else None,
    }


# --- the run ------------------------------------------------------------------------------


async def run(fx: Fixture, p: Params, out: Path, *, pin: bool = True) -> dict[str, Any]:
    server_prefix, wrk_prefix, pinned = pinning(pin)
    result: dict[str, Any] = {"pinning": pinned or "none", "seconds": p.http_seconds}
    if not shutil.which("wrk"):
        result["wrk"] = "not installed (bench/setup.sh installs it)"
    emails = await _emails(fx)
    bare_tokens = await bare_sessions(fx, list(emails))
    label = f"{fx.backend}"
    try:
        c_cmd, c_env = convstore_command(fx.url, server_prefix)
        b_cmd, b_env = bare_command(fx.url, server_prefix)
        async with (
            server(c_cmd, c_env, out / f"server-convstore-{label}.log") as (c_base, c_pid),
            server(b_cmd, b_env, out / f"server-bare-{label}.log") as (b_base, b_pid),
        ):
            samplers = {"convstore": _Sampler(c_pid), "bare": _Sampler(b_pid)}
            for s in samplers.values():
                s.start()
            try:
                async with httpx.AsyncClient(base_url=c_base, timeout=60) as client:
                    c_tokens = {uid: await _login(client, e) for uid, e in emails.items()}
                logins_peak = peak_rss_mb(c_pid)
                reset = reset_peak_rss(c_pid) and reset_peak_rss(b_pid)
                tokens = {"convstore": c_tokens, "bare": bare_tokens}
                bases = {"convstore": c_base, "bare": b_base}
                if "wrk" not in result:
                    result["routes"] = await _routes(fx, p, bases, tokens, wrk_prefix)
                result["W5"] = {
                    name: await _w5(bases[name], tokens[name][fx.writer], fx, p, name)
                    for name in SERVERS
                }
            finally:
                for s in samplers.values():
                    await s.stop()
            result["server_rss_mb"] = {
                "convstore": _memory(c_pid, samplers["convstore"], logins_peak, reset),
                "bare": _memory(b_pid, samplers["bare"], 0.0, reset),
            }
    finally:
        await drop_sessions(fx)
    return result


async def _routes(
    fx: Fixture,
    p: Params,
    bases: dict[str, str],
    tokens: dict[str, dict[uuid.UUID, str]],
    prefix: list[str],
) -> dict[str, Any]:
    owners = set(tokens["convstore"]) & set(tokens["bare"])
    convs = [(c, u) for c, u in fx.conversations if u in owners]
    routes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            (name, route): request_file(Path(tmp), name, route, convs, tokens[name])
            for name in SERVERS
            for route in ROUTES
        }
        for name in SERVERS:  # warm-up: connections, statement caches, the pages read
            await wrk(bases[name], files[(name, "read")], p.http_concurrency, 1, prefix)
        for route in ROUTES:
            routes[route] = {name: {} for name in SERVERS}
            for k, connections in enumerate((1, p.http_concurrency)):
                order = SERVERS if k % 2 == 0 else SERVERS[::-1]
                for name in order:
                    figures = await wrk(
                        bases[name], files[(name, route)], connections, p.http_seconds, prefix
                    )
                    routes[route][name][f"c{connections}"] = figures
    return routes


async def _w5(base: str, token: str, fx: Fixture, p: Params, name: str) -> dict[str, Any]:
    """8 clients appending to one new conversation at once, then the W5 check."""
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        if name == "convstore":
            r = await client.post(
                "/api/v1/conversations", json={"title": "W5 concurrent"}, headers=headers
            )
            r.raise_for_status()
            cid = uuid.UUID(r.json()["id"])
        else:
            cid = await _new_conversation(fx, "W5 concurrent http")
        clock = time.perf_counter

        async def writer(w: int) -> None:
            for i in range(p.http_per_writer):
                r = await client.post(
                    f"/api/v1/conversations/{cid}/messages",
                    json={"role": "user", "content": marked(USER_TEXT, w, i)},
                    headers=headers,
                )
                if r.status_code >= 400:
                    raise RuntimeError(f"{name} append: {r.status_code} {r.text[:200]}")

        start = clock()
        await asyncio.gather(*(writer(w) for w in range(p.writers)))
        wall = clock() - start
    total = p.writers * p.http_per_writer
    return {
        "messages": total,
        "items_per_s": round(total / wall, 1) if wall else None,
        "check": await check_w5(fx.backend, fx.url, cid, p.writers, p.http_per_writer),
    }


async def _new_conversation(fx: Fixture, title: str) -> uuid.UUID:
    """A conversation of the writer, made with the raw driver (the bare app has no route)."""
    from bench.raw import PG_NEW_CONVERSATION, SQ_NEW_CONVERSATION, now
    from convstore.kit.types import uuid7

    cid = uuid7()
    if fx.backend == "postgresql":
        conn = await asyncpg.connect(pg_plain(fx.url))
        try:
            await conn.execute(PG_NEW_CONVERSATION, cid, fx.writer, title, now())
        finally:
            await conn.close()
        return cid
    at = now().replace(tzinfo=None).isoformat(" ", timespec="microseconds")
    db = sqlite3.connect(sqlite_file(fx.url))
    try:
        db.execute(SQ_NEW_CONVERSATION, (cid.hex, fx.writer.hex, title, at, at))
        db.commit()
    finally:
        db.close()
    return cid
