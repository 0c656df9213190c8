"""The benchmark suite (``bench/``) end to end at a tiny size: the generator and loader, every
workload through the raw-driver bounds, convstore and every installed peer, HTTP through a
real ``convstore serve`` and the bare app, and the outputs. Correctness only: no timing is
asserted (speed is measured by ``make bench``).

The peers are the ``bench`` extra, not a dependency of the suite: a peer whose package is not
installed is skipped here with the reason (and reported as "not installed" by the run)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from bench.main import TINY, Config, run
from bench.peers import PEERS, PeerModule, load
from tests.support.databases import PG_ADMIN_URL, require_postgres

CONVSTORE_WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W1L", "W2L", "load")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=BACKENDS)
async def suite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any], Path]:
    """One tiny run of the whole suite per backend, shared by the tests below."""
    backend: str = request.param
    if backend == "postgresql":
        await require_postgres()
    tmp = tmp_path_factory.mktemp(f"bench-{backend}")
    cfg = Config(
        backends=[backend],
        sizes=[600],
        out=tmp / "results",
        data=tmp / "data",
        pg_url=PG_ADMIN_URL,
        quiet=True,
        params=TINY,
        shape={
            "heavy_conversations": 30,
            "heavy_tasks": 30,
            "conversations_per_user": 3,
            "long_messages": 150,
        },
        pg_prefix=f"convstore_bench_test_{uuid.uuid4().hex[:8]}",
    )
    return backend, await run(cfg), tmp


async def test_every_workload_runs_and_reports(suite: tuple[str, dict[str, Any], Path]) -> None:
    backend, doc, tmp = suite
    (result,) = doc["runs"]
    assert result["load"]["messages"] == 600 + 30 * 2 + 150
    impls = result["implementations"]
    bounds = [n for n, e in impls.items() if e["kind"] == "raw"]
    if backend == "sqlite":
        assert bounds == ["raw sqlite3"]
    elif importlib.util.find_spec("psycopg") is None:  # the bench extra is not installed
        assert bounds == ["raw asyncpg"]
        assert "raw psycopg" in {m["peer"] for m in result["not_installed"]}
    else:
        assert bounds == ["raw asyncpg", "raw psycopg"]
    for name in [*bounds, "convstore"]:
        entry = impls[name]
        assert entry["status"] == "ok", entry["status"]
        assert set(CONVSTORE_WORKLOADS) <= set(entry["workloads"]), name
        for w in ("W1", "W2", "W3", "W6", "W1L", "W2L"):
            assert entry["workloads"][w]["n"] > 0, (name, w)
        assert entry["workloads"]["load"]["messages"] == result["load"]["messages"]
        assert entry["workloads"]["W5"]["check"]["ok"], entry["workloads"]["W5"]["check"]
    comparison = result["comparison"]
    assert comparison["W2"]["vs_raw"] > 0
    http = result["http"]
    for server in ("convstore", "bare"):
        assert http["W5"][server]["check"]["ok"], http["W5"][server]
        assert http["server_rss_mb"][server]["peak"] > 0
    if shutil.which("wrk"):
        for route in ("read", "append"):
            for server in ("convstore", "bare"):
                for figures in http["routes"][route][server].values():
                    assert figures["requests"] > 0
                    assert figures["non_2xx"] == 0, (route, server, figures)
    else:
        assert "not installed" in http["wrk"]
    saved = json.loads((tmp / "results" / "results.json").read_text())
    assert saved["runs"][0]["comparison"]["W1"]["convstore"] > 0
    table = (tmp / "results" / "results.md").read_text()
    assert "convstore against the best peer and the raw bound" in table
    assert "| W5 8 concurrent writers |" in table
    assert "## Targets" in table
    assert not list((tmp / "data").glob("*.db")), "every store is dropped after the run"


@pytest.mark.parametrize("peer", PEERS, ids=[p.module for p in PEERS])
async def test_peer_runs_or_is_reported_missing(
    suite: tuple[str, dict[str, Any], Path], peer: PeerModule
) -> None:
    backend, doc, tmp = suite
    (result,) = doc["runs"]
    module, reason = load(peer)
    if module is None:
        missing = {m["module"]: m["status"] for m in result["not_installed"]}
        assert missing[peer.module].startswith("not installed: ")
        pytest.skip(f"{peer.distribution} {reason}")
    classes = [cls for cls in module.IMPLEMENTATIONS if backend in cls.backends]
    if not classes:
        pytest.skip(f"{peer.title} has no {backend} implementation")
    table = (tmp / "results" / "results.md").read_text()
    for cls in classes:
        entry = result["implementations"][cls.name]
        assert entry["status"] == "ok", entry["status"]
        assert entry["kind"] == "peer"
        assert all(v != "?" for v in entry["versions"].values()), entry["versions"]
        work = entry["workloads"]
        if cls.share_with:  # the twin loaded the store both use
            assert work["load"] == {"shared": cls.share_with}
        else:
            assert work["load"]["messages"] == result["load"]["messages"]
        for w in ("W1", "W2", "W1L", "W2L"):
            assert work[w]["n"] > 0, (cls.name, w, work[w])
        # The check judges the peer (a peer may lose messages, or fail under concurrent
        # writers): the run must have made it, or recorded the peer's error.
        w5 = work["W5"]
        assert "error" in w5 or w5["check"]["expected"] == TINY.writers * TINY.per_writer, w5
        for w, why in cls.unsupported.items():
            assert work[w] == {"unsupported": why}
        assert work["W6"] == {"unsupported": "no tasks"}
        assert f"| {cls.name} |" in table
