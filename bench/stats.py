"""Latency samples and their summary."""

from __future__ import annotations

import asyncio
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


class Turns:
    """Latency workloads of several implementations (raw driver, library) in strict
    alternation, one operation each in turn, then their throughput workloads one implementation
    at a time.

    Run one after the other, two implementations meet a shared machine in different moods:
    a slow minute lands on one of them and moves the ratio between them (by 30 % and more on
    a busy virtual machine). Taking turns operation by operation, both see the same machine.
    """

    def __init__(self, kinds: list[str]) -> None:
        self._kinds = kinds
        self._turn = 0
        self._changed = asyncio.Condition()
        self._alone = asyncio.Lock()

    def seat(self, kind: str) -> Seat:
        return Seat(self, self._kinds.index(kind))

    async def _wait(self, index: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._turn == index)

    async def _pass(self) -> None:
        async with self._changed:
            self._turn = (self._turn + 1) % len(self._kinds)
            self._changed.notify_all()


class Seat:
    """One implementation's place in :class:`Turns`."""

    def __init__(self, turns: Turns, index: int) -> None:
        self._turns = turns
        self._index = index
        self._holds_alone = False

    async def timed(
        self, op: Callable[[int], Awaitable[Any]], count: int, *, warmup: int = 20
    ) -> Samples:
        """Like :func:`timed`, each operation (warm-up included) waiting for this seat's turn.
        Every seat must run the same workloads with the same counts, in the same order."""
        samples = Samples()
        clock = time.perf_counter
        for i in range(-warmup, count):
            await self._turns._wait(self._index)
            t0 = clock()
            try:
                await op(i)
            finally:
                elapsed = clock() - t0
                await self._turns._pass()
            if i >= 0:
                samples.latencies.append(elapsed)
        samples.wall = sum(samples.latencies)
        return samples

    async def alone(self) -> None:
        """Wait until no other seat runs alone, then run alone until :meth:`release`."""
        await self._turns._alone.acquire()
        self._holds_alone = True

    def release(self) -> None:
        if self._holds_alone:
            self._holds_alone = False
            self._turns._alone.release()
