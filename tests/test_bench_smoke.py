"""The benchmark suite (``bench/``) end to end at a tiny size: the generator and loader, every
workload through the raw driver, the library and a real ``convstore serve``, and the outputs.
Correctness only: no timing is asserted (speed is measured by ``make bench``)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from bench.main import TINY, Config, run
from tests.support.databases import PG_ADMIN_URL, require_postgres

WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6")


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
async def test_every_workload_runs_and_reports(backend: str, tmp_path: Path) -> None:
    if backend == "postgresql":
        await require_postgres()
    cfg = Config(
        backends=[backend],
        sizes=[600],
        out=tmp_path / "results",
        data=tmp_path / "data",
        pg_url=PG_ADMIN_URL,
        quiet=True,
        params=TINY,
        shape={"heavy_conversations": 30, "heavy_tasks": 30, "conversations_per_user": 3},
        pg_prefix=f"convstore_bench_test_{uuid.uuid4().hex[:8]}",
    )

    doc = await run(cfg)

    (result,) = doc["runs"]
    assert result["load"]["messages"] == 600 + 30 * 2
    for kind in ("raw", "library"):
        assert set(WORKLOADS) <= set(result[kind])
        for name in ("W1", "W2", "W3", "W6"):
            assert result[kind][name]["n"] > 0
        assert result[kind]["W5"]["check"]["ok"], result[kind]["W5"]["check"]
    http = result["http"]
    assert set(WORKLOADS) <= set(http)
    assert http["W5"]["check"]["ok"], http["W5"]["check"]
    assert http["server_rss_mb"]["peak"] > 0
    saved = json.loads((tmp_path / "results" / "results.json").read_text())
    assert saved["runs"][0]["ratios"]["W2"]["p50"] > 0
    table = (tmp_path / "results" / "results.md").read_text()
    assert "W5 8 writers" in table
    assert "## Targets" in table
    assert not list((tmp_path / "data").glob("*.db")), "the dataset is dropped after the run"
