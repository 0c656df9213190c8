"""convstore, the raw-driver bounds and the peers on one loaded dataset, in one run.

1. **Bulk load**, one implementation at a time: each writes convstore's dataset (read back
   conversation by conversation) through its own batch API into an empty store of its own:
   the peers keep theirs for the workloads; convstore and the raw bounds load a scratch schema
   and run the workloads on the dataset loaded by ``bench.load`` (users, tasks, the heavy user).
2. **Latency workloads** (W1, W2, W3, W6, W1L, W2L), every implementation taking turns
   operation by operation (:func:`bench.stats.take_turns`), operation ``i`` of each on the
   same conversation.
3. **Throughput workloads** (W4, W5), one implementation at a time.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from bench import raw
from bench.fixture import USER_TEXT, Fixture, Params
from bench.impl import Context, Conv, Implementation, Op, Unsupported, call, marked
from bench.library import Convstore, batch_pairs
from bench.peers import discover
from bench.stats import Samples, take_turns, timed, timed_writers
from bench.stores import read_back

LATENCY = ("W1", "W2", "W3", "W6", "W1L", "W2L")
THROUGHPUT = ("W4", "W5")
WORKLOADS = (*LATENCY, *THROUGHPUT, "load")


def implementations(
    ctx: Context, peers: set[str] | None
) -> tuple[list[Implementation], list[dict[str, str]]]:
    """The raw bounds, convstore and (unless ``peers`` is empty) the peers for one backend."""
    missing: list[dict[str, str]] = []
    bounds: list[Implementation] = [raw.RawSqlite(ctx)]
    if ctx.backend == "postgresql":
        bounds = [raw.RawAsyncpg(ctx)]
        if importlib.util.find_spec("psycopg") is None:
            missing.append(
                {
                    "peer": raw.RawPsycopg.name,
                    "distribution": "psycopg",
                    "module": "raw",
                    "status": "not installed: psycopg (the bench extra)",
                }
            )
        else:
            bounds.append(raw.RawPsycopg(ctx))
    found, absent = discover(ctx, peers) if peers != set() else ([], [])
    return [*bounds, Convstore(ctx), *found], missing + absent


def _failure(exc: BaseException) -> dict[str, str]:
    if isinstance(exc, Unsupported):
        return {"unsupported": str(exc)}
    return {"error": f"{type(exc).__name__}: {exc}"[:400]}


def _log(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)  # noqa: T201 - progress for the operator


async def run(
    ctx: Context, fx: Fixture, p: Params, *, peers: set[str] | None = None, quiet: bool = False
) -> dict[str, Any]:
    """Every implementation on every workload; ``{"implementations": {name: …}, …}``."""
    impls, missing = implementations(ctx, peers)
    out: dict[str, Any] = {"implementations": {}, "not_installed": missing}
    entries: dict[str, dict[str, Any]] = out["implementations"]
    for impl in impls:
        entries[impl.name] = {
            "kind": impl.kind,
            "versions": impl.versions(),
            "setup": impl.setup_note,
            "status": "ok",
            "workloads": {},
        }
    live: list[Implementation] = []
    t0 = time.perf_counter()
    try:
        for impl in impls:
            _log(quiet, f"  bulk load: {impl.name}")
            loader = _loader(impl, live)
            try:
                if loader is not None:
                    impl.shared_from = loader  # type: ignore[attr-defined]
                    await impl.setup()
                    entries[impl.name]["workloads"]["load"] = {"shared": loader.name}
                else:
                    await impl.setup()
                    timer = await impl.bulk_load(read_back(ctx.backend, ctx.dataset_url))
                    entries[impl.name]["workloads"]["load"] = timer.as_dict()
            except Exception as exc:
                entries[impl.name]["status"] = "failed: " + _failure(exc).popitem()[1]
                traceback.print_exc()
                await _quietly(impl.close)
                await _quietly(impl.drop)
                continue
            live.append(impl)
        out["seconds"] = {"load": round(time.perf_counter() - t0, 1)}
        t0 = time.perf_counter()
        await raw.warm(ctx.backend, ctx.dataset_url, [Conv(*c) for c in fx.conversations])
        for impl in list(live):
            try:
                await impl.ready(_touched(fx))
                await _warm(impl, fx, p.warm_budget_s)
            except Exception as exc:
                entries[impl.name]["status"] = "failed: " + _failure(exc).popitem()[1]
                live.remove(impl)
        out["seconds"]["warm"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        for name in LATENCY:
            _log(quiet, f"  {name}, taking turns: {len(live)} implementations")
            await _latency(name, live, entries, fx, p)
        out["seconds"]["latency"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        for impl in live:
            _log(quiet, f"  W4, W5: {impl.name}")
            await _throughput(impl, entries[impl.name]["workloads"], fx, p)
        out["seconds"]["throughput"] = round(time.perf_counter() - t0, 1)
    finally:
        for impl in impls:  # every connection closed before any store is dropped (twins)
            await _quietly(impl.close)
        for impl in impls:
            await _quietly(impl.drop)
    return out


def _loader(impl: Implementation, live: Sequence[Implementation]) -> Implementation | None:
    """The twin whose store ``impl`` shares (it loaded it), when there is one."""
    twin = getattr(impl, "share_with", None)
    return next((other for other in live if other.name == twin), None) if twin else None


async def _warm(impl: Implementation, fx: Fixture, budget_s: float) -> None:
    """Read each sampled conversation once (a warm cache), for at most ``budget_s``."""
    deadline = time.perf_counter() + budget_s
    for conv in [Conv(*c) for c in fx.conversations]:
        try:
            await call(impl.last50, conv)
        except Unsupported:
            return
        if time.perf_counter() > deadline:
            return


def _touched(fx: Fixture) -> list[Conv]:
    convs = [Conv(*c) for c in fx.conversations]
    if fx.long_conv:
        convs.append(fx.long_conv)
    return convs


async def _quietly(fn: Callable[[], Any]) -> None:
    try:
        await call(fn)
    except Exception as exc:  # clean-up after a failure must not hide the results
        print(f"clean-up: {type(exc).__name__}: {exc}", file=sys.stderr)  # noqa: T201


def _latency_op(name: str, impl: Implementation, fx: Fixture, p: Params) -> Callable[[int], Any]:
    """Operation ``i`` of workload ``name`` for ``impl``."""
    if name in ("W1", "W2"):
        targets = fx.targets(p.writes if name == "W1" else p.reads, p.warmup)
        warm = p.warmup
        if name == "W1":
            return lambda i: impl.append(targets[i + warm], USER_TEXT)
        return lambda i: impl.last50(targets[i + warm])
    if name == "W3":
        return lambda i: impl.recent20(fx.heavy_user)
    if name == "W6":
        return lambda i: impl.pending_tasks(fx.heavy_user)
    long = fx.long_conv
    if long is None:
        raise Unsupported("the dataset has no long conversation")
    if name == "W1L":
        return lambda i: impl.append(long, USER_TEXT)
    return lambda i: impl.last50(long)


def _counts(name: str, p: Params) -> tuple[int, int]:
    return {
        "W1": (p.writes, p.warmup),
        "W2": (p.reads, p.warmup),
        "W3": (p.reads, p.warmup),
        "W6": (p.reads, p.warmup),
        "W1L": (p.long_writes, max(1, p.warmup // 6)),
        "W2L": (p.long_reads, max(1, p.warmup // 6)),
    }[name]


async def _latency(
    name: str,
    live: Sequence[Implementation],
    entries: dict[str, dict[str, Any]],
    fx: Fixture,
    p: Params,
) -> None:
    ops: dict[str, Callable[[int], Any]] = {}
    for impl in live:
        try:
            ops[impl.name] = _latency_op(name, impl, fx, p)
        except Unsupported as exc:
            entries[impl.name]["workloads"][name] = _failure(exc)
    count, warmup = _counts(name, p)
    samples, errors = await take_turns(ops, count, warmup=warmup, budget_s=p.workload_budget_s)
    for impl_name, s in samples.items():
        target = entries[impl_name]["workloads"]
        target[name] = _failure(errors[impl_name]) if impl_name in errors else s.summary()


async def _throughput(impl: Implementation, target: dict[str, Any], fx: Fixture, p: Params) -> None:
    try:
        conv = await call(impl.new_conversation, fx.writer, "W4 bulk")
        pairs = batch_pairs(p.batch_size)
        samples = await timed(
            lambda _: impl.append_batch(conv, pairs),
            p.batch_total // p.batch_size,
            warmup=0,
            items_per_op=p.batch_size,
        )
        target["W4"] = samples.summary()
    except Exception as exc:
        target["W4"] = _failure(exc)
    try:
        target["W5"] = await _w5(impl, fx, p)
    except Exception as exc:
        target["W5"] = _failure(exc)


async def _w5(impl: Implementation, fx: Fixture, p: Params) -> dict[str, Any]:
    conv = await call(impl.new_conversation, fx.writer, "W5 concurrent")
    writers = await impl.writers(conv, p.writers)
    try:
        ops = [_writer_op(op, w) for w, op in enumerate(writers)]
        samples: Samples = await timed_writers(ops, p.per_writer)
    finally:
        await impl.release_writers(writers)
    result: dict[str, Any] = samples.summary()
    result["check"] = await call(impl.check_w5, conv, p.writers, p.per_writer)
    return result


def _writer_op(op: Op, worker: int) -> Op:
    """Writer ``worker``'s ``op(i)``: its i-th marked message (async stays async)."""
    import asyncio

    if asyncio.iscoroutinefunction(op):

        async def write_async(i: int) -> None:
            await op(marked(USER_TEXT, worker, i))

        return write_async

    def write(i: int) -> None:
        op(marked(USER_TEXT, worker, i))

    return write
