"""W1–W6 through the library API (``convstore.open`` → ``Store``)."""

from __future__ import annotations

import asyncio
from typing import Any

import convstore
from bench.fixture import USER_TEXT, W6_TAG, Fixture, Params, check_w5
from bench.stats import Seat, timed, timed_concurrent
from convstore import Settings


def bench_settings(**overrides: Any) -> Settings:
    """Defaults as shipped (SQLite synchronous=FULL, pool pre-ping on, pool of 10 + 5)."""
    return Settings.model_validate({"env": "development", **overrides})


def batch_items(size: int) -> list[dict[str, Any]]:
    """A batch of alternating user and assistant messages (W4)."""
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"{USER_TEXT} #{i}"}
        for i in range(size)
    ]


async def run(fx: Fixture, p: Params, seat: Seat) -> dict[str, Any]:
    """Every workload in the library; a summary per workload (W5 with its check). Latency
    workloads take turns with the other implementations at ``seat``; W4 and W5 run alone."""
    out: dict[str, Any] = {}
    async with convstore.open(fx.url, settings=bench_settings()) as store:
        heavy = store.for_user(fx.heavy_user)

        async def w1(_: int) -> None:
            cid, uid = fx.pick()
            await store.for_user(uid).messages.append(cid, role="user", content=USER_TEXT)

        async def w2(_: int) -> None:
            cid, uid = fx.pick()
            await store.for_user(uid).messages.history(cid, limit=50)

        async def w3(_: int) -> None:
            await heavy.conversations.list(limit=20)

        async def w6(_: int) -> None:
            await heavy.tasks.list(completed=False, tag=W6_TAG, limit=20)

        out["W1"] = (await seat.timed(w1, p.writes, warmup=p.warmup)).summary()
        out["W2"] = (await seat.timed(w2, p.reads, warmup=p.warmup)).summary()
        out["W3"] = (await seat.timed(w3, p.reads, warmup=p.warmup)).summary()
        out["W6"] = (await seat.timed(w6, p.reads, warmup=p.warmup)).summary()
        await seat.alone()

        writer = store.for_user(fx.writer)
        conv = await writer.conversations.create(title="W4 bulk")
        items = batch_items(p.batch_size)

        async def w4(_: int) -> None:
            await writer.messages.append_many(conv.id, items)

        out["W4"] = (
            await timed(w4, p.batch_total // p.batch_size, warmup=0, items_per_op=p.batch_size)
        ).summary()

        shared = await writer.conversations.create(title="W5 concurrent")

        async def w5(worker: int, i: int) -> None:
            await writer.messages.append(
                shared.id, role="user", content=USER_TEXT, metadata={"w": worker, "n": i}
            )

        out["W5"] = (await timed_concurrent(w5, p.writers, p.per_writer)).summary()
        await asyncio.sleep(0)
    out["W5"]["check"] = await check_w5(fx.backend, fx.url, shared.id, p.writers, p.per_writer)
    return out
