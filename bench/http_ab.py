"""Two source trees of convstore served side by side, taking turns measurement by measurement:
the before and after of a change to the HTTP path, on a machine whose speed moves.

    git worktree add --detach /tmp/before HEAD~1
    python -m bench.http_ab /tmp/before/src src --route read --rounds 8

Each tree runs its own ``convstore serve`` (``PYTHONPATH`` set to it; rate limits and the
access log off) on a fresh database of its own (SQLite files in a temporary directory, or
PostgreSQL databases ``convstore_ab_<n>`` created and dropped at ``--pg-url``), filled through
the API: one account, 20 conversations of 60 messages. Both servers run on the last CPU and wrk
on the first (as the suite's HTTP workloads). Each round measures every server once, in
alternating order: requests/s at 16 connections (``--seconds``), the p50 at one connection,
and the server's CPU time (user and system, from /proc) per request at 16, which moves less
with the machine than the requests/s do. Prints the median and the best of each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import http
from bench.main import DEFAULT_PG
from bench.procinfo import cpu_seconds

PASSWORD = "correct horse battery staple"
CONVERSATIONS = 20
MESSAGES = 60


async def _fill(base: str) -> tuple[str, list[str]]:
    """One account and its conversations, through the API; its token and their ids."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        email = f"ab-{uuid.uuid4().hex[:8]}@example.com"
        account = {"email": email, "password": PASSWORD}
        (await client.post("/api/v1/auth/register", json=account)).raise_for_status()
        login = await client.post("/api/v1/auth/login", json=account)
        token: str = login.raise_for_status().json()["access_token"]
        headers = {"authorization": f"Bearer {token}"}
        ids = []
        for _ in range(CONVERSATIONS):
            created = await client.post("/api/v1/conversations", json={}, headers=headers)
            cid = str(created.raise_for_status().json()["id"])
            for i in range(MESSAGES):
                body = {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i}"}
                path = f"/api/v1/conversations/{cid}/messages"
                (await client.post(path, json=body, headers=headers)).raise_for_status()
            ids.append(cid)
        return token, ids


@contextlib.asynccontextmanager
async def _databases(backend: str, pg_url: str, count: int) -> AsyncIterator[list[str]]:
    """``count`` fresh databases; dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
            yield [f"sqlite:///{Path(tmp) / f'ab{i}.db'}" for i in range(count)]
        return
    import asyncpg  # the postgres extra

    names = [f"convstore_ab_{i}" for i in range(count)]
    admin = await asyncpg.connect(pg_url)
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        root = pg_url.rsplit("/", 1)[0]
        yield [f"{root}/{name}" for name in names]
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run(
    trees: Sequence[str], backend: str, pg_url: str, route: str, rounds: int, seconds: float
) -> list[dict[str, Any]]:
    server_prefix, wrk_prefix, _ = http.pinning(True)
    out = Path(tempfile.mkdtemp(prefix="bench-ab-out-"))
    async with contextlib.AsyncExitStack() as stack:
        urls = await stack.enter_async_context(_databases(backend, pg_url, len(trees)))
        servers = []
        for i, (source, url) in enumerate(zip(trees, urls, strict=True)):
            cmd, env = http.convstore_command(url, server_prefix)
            env.update(PYTHONPATH=source, CONVSTORE_AUTO_MIGRATE="true")
            base, pid = await stack.enter_async_context(
                http.server(cmd, env, out / f"server-{i}.log")
            )
            token, ids = await _fill(base)
            requests = _requests(out / f"requests-{i}.tsv", route, token, ids)
            servers.append((base, pid, requests))
        for base, _, requests in servers:  # warm up
            await http.wrk(base, requests, 16, 2, wrk_prefix)
        figures: list[dict[str, list[float]]] = [
            {"req_per_s": [], "cpu_us": [], "c1_p50_ms": []} for _ in trees
        ]
        for r in range(rounds):
            order = range(len(trees)) if r % 2 == 0 else reversed(range(len(trees)))
            for i in order:
                base, pid, requests = servers[i]
                before = cpu_seconds(pid)
                busy = await http.wrk(base, requests, 16, seconds, wrk_prefix)
                used = cpu_seconds(pid) - before
                one = await http.wrk(base, requests, 1, max(1.0, seconds / 2), wrk_prefix)
                if busy["non_2xx"] or one["non_2xx"]:
                    raise RuntimeError(f"{trees[i]}: answers other than 2xx; see {out}")
                figures[i]["req_per_s"].append(busy["req_per_s"])
                figures[i]["cpu_us"].append(used / busy["requests"] * 1e6)
                figures[i]["c1_p50_ms"].append(one["p50_ms"])
    return [_summary(tree, f) for tree, f in zip(trees, figures, strict=True)]


def _requests(path: Path, route: str, token: str, ids: list[str]) -> Path:
    body = json.dumps({"role": "user", "content": "what is on my list today?"})
    lines = []
    for i in range(2_000):
        target = f"/api/v1/conversations/{ids[i % len(ids)]}/messages"
        if route == "read":
            lines.append(f"GET\t{target}?limit=50\t{token}\t")
        else:
            lines.append(f"POST\t{target}\t{token}\t{body}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _summary(tree: str, f: dict[str, list[float]]) -> dict[str, Any]:
    return {
        "tree": tree,
        "req_per_s": {"median": statistics.median(f["req_per_s"]), "best": max(f["req_per_s"])},
        "cpu_us_per_request": {"median": statistics.median(f["cpu_us"]), "best": min(f["cpu_us"])},
        "c1_p50_ms": {"median": statistics.median(f["c1_p50_ms"]), "best": min(f["c1_p50_ms"])},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", help="source directories (each holding convstore/)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--route", choices=("read", "append"), default="read")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="each measurement at c16")
    args = parser.parse_args()
    trees = [str(Path(tree).resolve()) for tree in args.trees]  # PYTHONPATH of each server
    results = asyncio.run(
        run(trees, args.backend, args.pg_url, args.route, args.rounds, args.seconds)
    )
    for r in results:
        rate, cpu, p50 = r["req_per_s"], r["cpu_us_per_request"], r["c1_p50_ms"]
        print(  # noqa: T201 - the tool's output
            f"{r['tree']}: c16 {rate['median']:,.0f} req/s (best {rate['best']:,.0f}), "
            f"CPU {cpu['median']:,.0f} µs/request (best {cpu['best']:,.0f}), "
            f"c1 p50 {p50['median']:.3f} ms (best {p50['best']:.3f})"
        )


if __name__ == "__main__":
    main()
