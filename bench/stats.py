"""Latency samples and their summary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
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


async def _maybe_await(result: Any) -> Any:
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        return await result
    return result


async def timed(
    op: Callable[[int], Any], count: int, *, warmup: int = 20, items_per_op: int = 1
) -> Samples:
    """Run ``op(i)`` ``warmup`` times untimed, then ``count`` times one after another
    (``op`` may be synchronous)."""
    for i in range(warmup):
        await _maybe_await(op(-1 - i))
    samples = Samples(items_per_op=items_per_op)
    clock = time.perf_counter
    start = clock()
    for i in range(count):
        t0 = clock()
        await _maybe_await(op(i))
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


async def take_turns(
    ops: dict[str, Callable[[int], Any]],
    count: int,
    *,
    warmup: int = 20,
    budget_s: float | None = None,
) -> tuple[dict[str, Samples], dict[str, Exception]]:
    """Run the same workload on several implementations in strict alternation, one operation
    each in turn (``op(i)`` for ``i`` in ``-warmup … count-1``; operation ``i`` of every
    implementation targets the same conversation), the order rotating each round so that no
    implementation always follows the same one.

    Run one after the other, implementations meet a shared machine in different moods: a slow
    minute lands on one of them and moves the ratio between them (by 30 % and more on a busy
    virtual machine). Taking turns operation by operation, they all see the same machine.

    An operation may be synchronous (timed as a plain call) or return an awaitable. An
    implementation whose operation raises leaves the workload; its exception is returned.
    Past ``budget_s`` of wall time the rounds stop for every implementation alike (a slow
    peer then has fewer, equally many samples as the others).
    """
    samples = {name: Samples() for name in ops}
    errors: dict[str, Exception] = {}
    names = list(ops)
    clock = time.perf_counter
    deadline = clock() + budget_s if budget_s else None
    for i in range(-warmup, count):
        if deadline is not None and i > 0 and clock() > deadline:
            break
        shift = i % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            if name in errors:
                continue
            op = ops[name]
            t0 = clock()
            try:
                result = op(i)
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    await result
            except Exception as exc:  # a peer's failure is a result, not the run's end
                errors[name] = exc
                continue
            if i >= 0:
                samples[name].latencies.append(clock() - t0)
    for s in samples.values():
        s.wall = sum(s.latencies)
    return samples, errors


async def timed_writers(writers: list[Callable[[int], Any]], per_worker: int) -> Samples:
    """``len(writers)`` concurrent writers, each calling its ``op(i)`` ``per_worker`` times in
    sequence: coroutine functions as tasks of this loop, plain functions each in a thread of
    its own (as a synchronous program would run them)."""
    samples = Samples()
    clock = time.perf_counter

    async def run_async(op: Callable[[int], Any]) -> None:
        for i in range(per_worker):
            t0 = clock()
            await op(i)
            samples.latencies.append(clock() - t0)

    def run_sync(op: Callable[[int], Any]) -> None:
        for i in range(per_worker):
            t0 = clock()
            op(i)
            samples.latencies.append(clock() - t0)

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=len(writers)) as pool:
        start = clock()
        await asyncio.gather(
            *(
                run_async(op)
                if asyncio.iscoroutinefunction(op)
                else loop.run_in_executor(pool, run_sync, op)
                for op in writers
            )
        )
        samples.wall = clock() - start
    return samples
