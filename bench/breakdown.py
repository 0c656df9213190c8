"""Where one library read spends its time, piece by piece, against the raw driver.

    python -m bench.breakdown [--backend postgresql] [--ops 3000]

Loads 10k messages, then times W2 (last 50 messages) and W3 (20 recent conversations): the
raw driver's prepared query, a pooled connection's checkout and release, the library's
statement on a held connection, building the read models, and the whole library call.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

import convstore
from bench.dataset import Shape
from bench.fixture import load_fixture, pg_plain
from bench.library import bench_settings
from bench.load import create_pg_database, drop_pg_database, load, prepare
from bench.main import DEFAULT_PG
from bench.raw import PG_HISTORY, PG_RECENT
from convstore.conversations.repository import MessageRepository
from convstore.conversations.service import conversation_read, message_read


async def _time(fn: Callable[[], Awaitable[Any]], ops: int) -> float:
    for _ in range(200):
        await fn()
    start = time.perf_counter()
    for _ in range(ops):
        await fn()
    return (time.perf_counter() - start) / ops * 1e6


async def breakdown(url: str, backend: str, ops: int) -> list[tuple[str, float]]:
    fx = await load_fixture(backend, url)
    cid, uid = fx.conversations[0]
    heavy = fx.heavy_user
    out: list[tuple[str, float]] = []
    if backend == "postgresql":
        raw = await asyncpg.connect(pg_plain(url))
        try:
            history, recent = await raw.prepare(PG_HISTORY), await raw.prepare(PG_RECENT)
            out.append(
                ("W2 raw asyncpg, prepared", await _time(lambda: history.fetch(cid, uid), ops))
            )
            out.append(("W3 raw asyncpg, prepared", await _time(lambda: recent.fetch(heavy), ops)))
        finally:
            await raw.close()
    async with convstore.open(url, settings=bench_settings()) as store:

        async def checkout() -> None:
            async with store.reading(uid):
                pass

        out.append(("checkout + release (Store.reading)", await _time(checkout, ops)))
        async with store.reading(uid) as conn:
            repo = MessageRepository(conn, uid)
            out.append(
                ("W2 statement, connection held", await _time(lambda: repo.latest(cid, 51), ops))
            )
            rows = await repo.latest(cid, 51)

            async def build_messages() -> None:
                [message_read(r) for r in rows]

            out.append(("W2 build 51 MessageRead", await _time(build_messages, ops)))
        async with store.reading(heavy) as conn:
            crepo = MessageRepository(conn, heavy).conversations
            lister = crepo.list_recent
            out.append(
                (
                    "W3 statement, connection held",
                    await _time(lambda: lister(limit=21, after=None, include_deleted=False), ops),
                )
            )
            conv_rows = await lister(limit=21, after=None, include_deleted=False)

            async def build_conversations() -> None:
                [conversation_read(r) for r in conv_rows]

            out.append(("W3 build 21 ConversationRead", await _time(build_conversations, ops)))
        me, them = store.for_user(uid), store.for_user(heavy)
        out.append(("W2 library call", await _time(lambda: me.messages.history(cid), ops)))
        out.append(("W3 library call", await _time(lambda: them.conversations.list(), ops)))
    return out


async def main(backend: str, ops: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        name = "convstore_bench_breakdown"
        if backend == "postgresql":
            url = await create_pg_database(pg_plain(DEFAULT_PG), name)
        else:
            url = f"sqlite:///{Path(tmp) / 'breakdown.db'}"
        try:
            await prepare(url, bench_settings())
            await load(url, Shape(messages=10_000), quiet=True)
            for label, us in await breakdown(url, backend, ops):
                print(f"{label:40s} {us:8.1f} µs")  # noqa: T201
        finally:
            if backend == "postgresql":
                await drop_pg_database(pg_plain(DEFAULT_PG), name)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m bench.breakdown")
    ap.add_argument("--backend", default="postgresql", choices=["postgresql", "sqlite"])
    ap.add_argument("--ops", type=int, default=3_000)
    args = ap.parse_args()
    asyncio.run(main(args.backend, args.ops))
