"""Latency samples and their summary."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class Samples:
    """Per-operation latencies (seconds) and the wall time of the whole run."""

    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    items_per_op: int = 1

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        n = len(ordered)
        ops_s = n / self.wall if self.wall else None
        return {
            "n": n,
            "p50_ms": round(quantile(ordered, 0.50) * 1e3, 4),
            "p99_ms": round(quantile(ordered, 0.99) * 1e3, 4),
            "mean_ms": round(sum(ordered) / n * 1e3, 4) if n else None,
            "ops_per_s": round(ops_s, 1) if ops_s else None,
            "items_per_s": round(ops_s * self.items_per_op, 1) if ops_s else None,
        }


async def timed(
    op: Callable[[int], Awaitable[Any]], count: int, *, warmup: int = 20, items_per_op: int = 1
) -> Samples:
    """Run ``op(i)`` ``warmup`` times untimed, then ``count`` times one after another."""
    for i in range(warmup):
        await op(-1 - i)
    samples = Samples(items_per_op=items_per_op)
    clock = time.perf_counter
    start = clock()
    for i in range(count):
        t0 = clock()
        await op(i)
        samples.latencies.append(clock() - t0)
    samples.wall = clock() - start
    return samples


async def timed_concurrent(
    op: Callable[[int, int], Awaitable[Any]],
    workers: int,
    per_worker: int,
    *,
    items_per_op: int = 1,
) -> Samples:
    """``workers`` tasks, each running ``op(worker, i)`` ``per_worker`` times in sequence."""
    import asyncio

    samples = Samples(items_per_op=items_per_op)
    clock = time.perf_counter

    async def run(worker: int) -> None:
        for i in range(per_worker):
            t0 = clock()
            await op(worker, i)
            samples.latencies.append(clock() - t0)

    start = clock()
    await asyncio.gather(*(run(w) for w in range(workers)))
    samples.wall = clock() - start
    return samples
