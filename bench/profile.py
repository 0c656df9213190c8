"""Profile one library workload on a small dataset (cProfile, sorted by own time).

python -m bench.profile --backend postgresql --workload W2 [--ops 2000] [--top 25]
    [--sort cumulative] [--callers REGEX]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
from pathlib import Path
from typing import Any

import convstore
from bench.dataset import Shape
from bench.fixture import USER_TEXT, W6_TAG, load_fixture, pg_plain
from bench.library import batch_items, bench_settings
from bench.load import create_pg_database, drop_pg_database, load, prepare
from bench.main import DEFAULT_PG


async def _setup(backend: str, directory: Path) -> str:
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'profile.db'}"
    else:
        url = await create_pg_database(pg_plain(DEFAULT_PG), "convstore_bench_profile")
    await prepare(url, bench_settings())
    await load(url, Shape(messages=10_000), quiet=True)
    return url


async def profile(
    backend: str, workload: str, ops: int, top: int, sort: str, callers: str | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = await _setup(backend, Path(tmp))
        fx = await load_fixture(backend, url)
        try:
            async with convstore.open(url, settings=bench_settings()) as store:
                heavy = store.for_user(fx.heavy_user)
                conv = await heavy.conversations.create(title="profile")

                async def op() -> Any:
                    cid, uid = fx.pick()
                    me = store.for_user(uid)
                    if workload == "W1":
                        return await me.messages.append(cid, role="user", content=USER_TEXT)
                    if workload == "W2":
                        return await me.messages.history(cid, limit=50)
                    if workload == "W3":
                        return await heavy.conversations.list(limit=20)
                    if workload == "W4":
                        return await heavy.messages.append_many(conv.id, batch_items(100))
                    return await heavy.tasks.list(completed=False, tag=W6_TAG, limit=20)

                for _ in range(50):
                    await op()
                prof = cProfile.Profile()
                prof.enable()
                for _ in range(ops):
                    await op()
                prof.disable()
            stats = pstats.Stats(prof).sort_stats(sort)
            stats.print_stats(top)
            if callers:
                stats.print_callers(callers)
        finally:
            if backend == "postgresql":
                await drop_pg_database(pg_plain(DEFAULT_PG), "convstore_bench_profile")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.profile")
    ap.add_argument("--backend", default="postgresql", choices=["sqlite", "postgresql"])
    ap.add_argument("--workload", default="W2", choices=["W1", "W2", "W3", "W4", "W6"])
    ap.add_argument("--ops", type=int, default=2_000)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--sort", default="tottime", help="pstats order: tottime, cumulative, …")
    ap.add_argument("--callers", help="also print who calls functions matching this regex")
    args = ap.parse_args()
    asyncio.run(profile(args.backend, args.workload, args.ops, args.top, args.sort, args.callers))


if __name__ == "__main__":
    main()
