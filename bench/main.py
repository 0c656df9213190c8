"""The benchmark runner: for each backend and size, load the dataset, then run every workload
through the raw-driver bounds, convstore and the peers (bench/compare.py), then HTTP
(convstore serve against a bare app, with wrk), and write the results.

    python -m bench --backends sqlite,postgresql --sizes 100k
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg

from bench import compare, http, report
from bench.dataset import Shape, parse_size, size_label
from bench.fixture import Params, load_fixture, pg_plain
from bench.impl import Context
from bench.load import create_pg_database, drop_pg_database, load, prepare, vacuum

ROOT = Path(__file__).resolve().parent
DEFAULT_PG = os.environ.get(
    "CONVSTORE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TINY = Params(
    reads=20,
    writes=10,
    long_reads=5,
    long_writes=5,
    batch_total=200,
    batch_size=50,
    writers=3,
    per_writer=10,
    http_concurrency=4,
    http_seconds=1.0,
    http_per_writer=5,
    warmup=2,
    workload_budget_s=30.0,
    warm_budget_s=5.0,
)
"""For smoke tests: every workload, a few operations each."""


@dataclass
class Config:
    backends: list[str]
    sizes: list[int]
    out: Path = ROOT / "results"
    data: Path = ROOT / ".data"
    pg_url: str = DEFAULT_PG
    http: bool = True
    reuse: bool = False
    keep: bool = False
    quiet: bool = False
    params: Params = field(default_factory=Params)
    shape: dict[str, int] = field(default_factory=dict)
    pg_prefix: str = "convstore_bench"
    """PostgreSQL databases are named ``<prefix>_<size>`` (created and dropped by the run)."""
    peers: set[str] | None = None
    """Peer modules to run (``bench/peers/``); ``None`` for all, empty for none."""
    cpu_pin: bool = True
    """HTTP: the server on one CPU and wrk on another (``taskset``)."""


def _log(cfg: Config, text: str) -> None:
    if not cfg.quiet:
        print(text, file=sys.stderr, flush=True)  # noqa: T201 - progress for the operator


async def _database(cfg: Config, backend: str, label: str) -> tuple[str, Path, bool]:
    """The URL for one dataset, its load marker, and whether it is already loaded."""
    marker = cfg.data / f"{backend}-{label}.json"
    if backend == "sqlite":
        path = cfg.data / f"sqlite-{label}.db"
        url = f"sqlite:///{path}"
        loaded = cfg.reuse and marker.exists() and path.exists()
        if not loaded:
            _remove_sqlite(path)
        return url, marker, loaded
    name = f"{cfg.pg_prefix}_{label.lower()}"
    base = cfg.pg_url.rsplit("/", 1)[0]
    if cfg.reuse and marker.exists() and await _pg_exists(cfg.pg_url, name):
        return f"{base}/{name}", marker, True
    return await create_pg_database(pg_plain(cfg.pg_url), name), marker, False


async def _pg_exists(admin_url: str, name: str) -> bool:
    conn = await asyncpg.connect(pg_plain(admin_url))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def run_one(cfg: Config, backend: str, size: int) -> dict[str, Any]:
    label = size_label(size)
    shape = Shape(messages=size, **cfg.shape)
    url, marker, loaded = await _database(cfg, backend, label)
    from bench.library import bench_settings

    if loaded:
        stats = {**json.loads(marker.read_text()), "reused": True}
        _log(cfg, f"[{backend} {label}] reusing the loaded dataset")
        if backend == "postgresql":  # earlier runs' appends leave dead row versions behind
            conn = await asyncpg.connect(pg_plain(url))
            try:
                await vacuum(conn)
            finally:
                await conn.close()
    else:
        await prepare(url, bench_settings())
        _log(cfg, f"[{backend} {label}] loading {size:,} messages")
        stats = (await load(url, shape, quiet=cfg.quiet)).as_dict()
        marker.write_text(json.dumps(stats))
        _log(cfg, f"[{backend} {label}] loaded in {stats['seconds']} s")
    fx = await load_fixture(backend, url)
    result: dict[str, Any] = {"backend": backend, "size": size, "size_label": label}
    result["load"] = stats
    ctx = Context(
        backend=backend,
        label=label,
        dataset_url=url,
        pg_admin_url=cfg.pg_url,
        data_dir=cfg.data,
        prefix=cfg.pg_prefix,
        keep=cfg.keep,
    )
    _log(cfg, f"[{backend} {label}] raw bounds, convstore and peers")
    t0 = time.perf_counter()
    result.update(await compare.run(ctx, fx, cfg.params, peers=cfg.peers, quiet=cfg.quiet))
    _log(cfg, f"[{backend} {label}] compared in {time.perf_counter() - t0:.1f} s")
    if cfg.http:
        _log(cfg, f"[{backend} {label}] http")
        t0 = time.perf_counter()
        result["http"] = await http.run(fx, cfg.params, cfg.out, pin=cfg.cpu_pin)
        _log(cfg, f"[{backend} {label}] http done in {time.perf_counter() - t0:.1f} s")
    if not cfg.keep and not cfg.reuse:
        await _drop(cfg, backend, url, marker)
    return result


def _remove_sqlite(path: Path, marker: Path | None = None) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if marker is not None:
        marker.unlink(missing_ok=True)


async def _drop(cfg: Config, backend: str, url: str, marker: Path) -> None:
    if backend == "sqlite":
        _remove_sqlite(Path(url.split("///", 1)[1]), marker)
    else:
        _remove_sqlite(Path("/nonexistent"), marker)
        await drop_pg_database(pg_plain(cfg.pg_url), url.rsplit("/", 1)[1])


def _meta() -> dict[str, Any]:
    versions = ", ".join(
        f"{p} {metadata.version(p)}"
        for p in (
            "convstore",
            "sqlalchemy",
            "asyncpg",
            "aiosqlite",
            "pydantic",
            "fastapi",
            "uvicorn",
        )
    )
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu = platform.processor()
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
    }


async def run(cfg: Config) -> dict[str, Any]:
    cfg.out.mkdir(parents=True, exist_ok=True)
    cfg.data.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"meta": _meta(), "params": cfg.params.__dict__, "runs": []}
    for backend in cfg.backends:
        for size in cfg.sizes:
            doc["runs"].append(await run_one(cfg, backend, size))
            report.write(doc, cfg.out)  # partial results survive an interrupted run
    written = report.write(doc, cfg.out)
    _log(cfg, "wrote " + ", ".join(str(p) for p in written))
    return doc


def parse_args(argv: list[str] | None = None) -> Config:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    ap.add_argument("--sizes", default="100k", help="messages, e.g. 10k,100k,1M,10M")
    ap.add_argument("--out", type=Path, default=ROOT / "results")
    ap.add_argument("--data", type=Path, default=ROOT / ".data", help="SQLite files, markers")
    ap.add_argument("--pg-url", default=DEFAULT_PG, help="a server where databases may be created")
    ap.add_argument("--no-http", action="store_true", help="skip the HTTP workloads")
    ap.add_argument("--reuse", action="store_true", help="reuse loaded datasets (and keep them)")
    ap.add_argument("--keep", action="store_true", help="keep the datasets after the run")
    ap.add_argument("--tiny", action="store_true", help="a few operations per workload (smoke)")
    ap.add_argument("--reads", type=int, help="operations per read workload")
    ap.add_argument("--writes", type=int, help="appends in W1")
    ap.add_argument("--long", type=int, help="messages in the long conversation (2,000)")
    ap.add_argument("--peers", help="comma-separated peer modules (bench/peers/), or 'none'")
    ap.add_argument("--no-pin", action="store_true", help="HTTP: no taskset CPU pinning")
    ap.add_argument("--http-seconds", type=float, help="duration of each wrk measurement")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    params = TINY if args.tiny else Params()
    if args.reads:
        params = replace(params, reads=args.reads)
    if args.writes:
        params = replace(params, writes=args.writes)
    if args.http_seconds:
        params = replace(params, http_seconds=args.http_seconds)
    shape: dict[str, int] = (
        {"heavy_conversations": 40, "heavy_tasks": 40, "long_messages": 200} if args.tiny else {}
    )
    if args.long is not None:
        shape["long_messages"] = args.long
    peers: set[str] | None = None
    if args.peers:
        peers = set() if args.peers == "none" else {p.strip() for p in args.peers.split(",")}
    return Config(
        backends=[b.strip() for b in args.backends.split(",") if b.strip()],
        sizes=[parse_size(s) for s in args.sizes.split(",") if s.strip()],
        out=args.out,
        data=args.data,
        pg_url=args.pg_url,
        http=not args.no_http,
        reuse=args.reuse,
        keep=args.keep,
        quiet=args.quiet,
        params=params,
        shape=shape,
        peers=peers,
        cpu_pin=not args.no_pin,
    )


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))
