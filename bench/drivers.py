"""Driver comparison on the W2 query (the last 51 messages of a conversation), same rows:

- PostgreSQL: asyncpg (prepared statement) against psycopg 3 async (server-side prepared
  after the first executions), when psycopg is importable;
- SQLite: aiosqlite (``execute_fetchall``: one hop to its thread) against the stdlib driver
  on a dedicated thread (``run_in_executor``: one hop) and in the event loop's own thread.

    python -m bench.drivers [--ops 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg

from bench.dataset import Shape
from bench.fixture import load_fixture, pg_plain
from bench.library import bench_settings
from bench.load import create_pg_database, drop_pg_database, load, prepare
from bench.main import DEFAULT_PG
from bench.raw import PG_HISTORY, SQ_HISTORY


async def _time(fn: Callable[[int], Awaitable[Any]], ops: int) -> float:
    for i in range(100):
        await fn(i)
    start = time.perf_counter()
    for i in range(ops):
        await fn(i)
    return (time.perf_counter() - start) / ops * 1e6


async def postgres(ops: int) -> dict[str, float]:
    name = "convstore_bench_drivers"
    url = await create_pg_database(pg_plain(DEFAULT_PG), name)
    out: dict[str, float] = {}
    try:
        await prepare(url, bench_settings())
        await load(url, Shape(messages=10_000), quiet=True)
        fx = await load_fixture("postgresql", url)
        pairs = fx.conversations
        conn = await asyncpg.connect(pg_plain(url))
        try:
            stmt = await conn.prepare(PG_HISTORY)
            out["asyncpg"] = await _time(lambda i: stmt.fetch(*pairs[i % len(pairs)]), ops)
        finally:
            await conn.close()
        try:
            import psycopg
        except ImportError:
            return out
        sql = PG_HISTORY.replace("$1", "%(c)s").replace("$2", "%(u)s")
        async with await psycopg.AsyncConnection.connect(pg_plain(url), autocommit=True) as pconn:

            async def run(i: int) -> Any:
                c, u = pairs[i % len(pairs)]
                cur = await pconn.execute(sql, {"c": c, "u": u}, prepare=True)
                return await cur.fetchall()

            out["psycopg"] = await _time(run, ops)
    finally:
        await drop_pg_database(pg_plain(DEFAULT_PG), name)
    return out


async def sqlite(ops: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "drivers.db"
        url = f"sqlite:///{path}"
        await prepare(url, bench_settings())
        await load(url, Shape(messages=10_000), quiet=True)
        fx = await load_fixture("sqlite", url)
        pairs = [(c.hex, u.hex, c.hex, u.hex) for c, u in fx.conversations]
        async with aiosqlite.connect(path) as adb:
            out["aiosqlite"] = await _time(
                lambda i: adb.execute_fetchall(SQ_HISTORY, pairs[i % len(pairs)]), ops
            )
        db = sqlite3.connect(path, check_same_thread=False)
        pool = ThreadPoolExecutor(max_workers=1)
        loop = asyncio.get_running_loop()
        try:

            def query(i: int) -> list[Any]:
                return db.execute(SQ_HISTORY, pairs[i % len(pairs)]).fetchall()

            out["sqlite3 on a thread"] = await _time(
                lambda i: loop.run_in_executor(pool, query, i), ops
            )

            async def inline(i: int) -> list[Any]:
                return query(i)

            out["sqlite3 in the loop"] = await _time(inline, ops)
        finally:
            pool.shutdown()
            db.close()
    return out


async def main(ops: int) -> None:
    for backend, results in (("postgresql", await postgres(ops)), ("sqlite", await sqlite(ops))):
        for driver, us in results.items():
            print(f"{backend:11s} {driver:22s} {us:8.1f} µs per W2 query")  # noqa: T201


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m bench.drivers")
    ap.add_argument("--ops", type=int, default=2_000)
    asyncio.run(main(ap.parse_args().ops))
