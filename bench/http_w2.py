"""W2 (and W6) alone over HTTP, to compare server options on one loaded dataset.

    python -m bench.http_w2 --backend postgresql --size 10k -- --workers 2
    python -m bench.http_w2 --env CONVSTORE_DB_POOL_SIZE=16

The dataset must have been loaded and kept (``python -m bench --sizes 10k --reuse``). Prints,
per workload, the p50 of ``--reads`` requests at concurrency 1 and the requests/s of 2,000 at
16; then the server's RSS (the sum over its processes with ``--workers``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench import http
from bench.dataset import HEAVY_EMAIL, parse_size, size_label
from bench.fixture import W6_TAG, load_fixture
from bench.main import DEFAULT_PG
from bench.procinfo import peak_rss_mb, reset_peak_rss, rss_mb
from bench.stats import timed, timed_concurrent


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's workers)."""
    found = [pid]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found += _tree(int(proc.name))
    return found


async def run(backend: str, url: str, reads: int, args: list[str], env: dict[str, str]) -> Any:
    fx = await load_fixture(backend, url)
    log = Path(tempfile.gettempdir()) / "bench-http-w2.log"
    cmd, server_env = http.convstore_command(url, [])
    async with http.server([*cmd, *args], {**server_env, **env}, log) as (base, pid):
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
            emails = await http._emails(fx)
            headers = {
                uid: {"authorization": f"Bearer {await http._login(client, e)}"}
                for uid, e in emails.items()
            }
            heavy = {"authorization": f"Bearer {await http._login(client, HEAVY_EMAIL)}"}
            procs = _tree(pid)
            out: dict[str, Any] = {"logins_peak_mb": round(sum(map(peak_rss_mb, procs)), 1)}
            for p in procs:
                reset_peak_rss(p)
            convs = [(c, u) for c, u in fx.conversations if u in headers]

            async def w2(*_: int) -> None:
                cid, uid = fx.rng.choice(convs)
                r = await client.get(
                    f"/api/v1/conversations/{cid}/messages",
                    params={"limit": 50},
                    headers=headers[uid],
                )
                r.raise_for_status()

            async def w6(*_: int) -> None:
                r = await client.get(
                    "/api/v1/tasks",
                    params={"completed": "false", "tag": W6_TAG, "limit": 20},
                    headers=heavy,
                )
                r.raise_for_status()

            for name, op in (("W2", w2), ("W6", w6)):
                c1 = (await timed(op, reads, warmup=30)).summary()
                c16 = (await timed_concurrent(op, 16, 125)).summary()
                out[name] = {"c1_p50_ms": c1["p50_ms"], "c16_req_s": c16["ops_per_s"]}
            out["workloads_peak_mb"] = round(sum(map(peak_rss_mb, procs)), 1)
            out["rss_mb"] = round(sum(map(rss_mb, procs)), 1)
            out["processes"] = len(procs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="postgresql", choices=["postgresql", "sqlite"])
    ap.add_argument("--size", default="10k")
    ap.add_argument("--pg-url", default=DEFAULT_PG)
    ap.add_argument("--data", type=Path, default=Path(__file__).parent / ".data")
    ap.add_argument("--reads", type=int, default=1_000)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    ap.add_argument("serve_args", nargs="*", help="after --: options of convstore serve")
    ns = ap.parse_args()
    label = size_label(parse_size(ns.size))
    if ns.backend == "sqlite":
        url = f"sqlite:///{ns.data / f'sqlite-{label}.db'}"
    else:
        url = f"{ns.pg_url.rsplit('/', 1)[0]}/convstore_bench_{label.lower()}"
    env = dict(item.split("=", 1) for item in ns.env)
    result = asyncio.run(run(ns.backend, url, ns.reads, ns.serve_args, env))
    print(json.dumps(result))  # noqa: T201 - the tool's output


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
