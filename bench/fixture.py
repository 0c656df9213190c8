"""What the workloads need from a loaded dataset, read with the plain driver, and the W5
consistency check (the same for every implementation)."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench.dataset import HEAVY_EMAIL, LONG_EMAIL
from bench.impl import MARK, Conv

USER_TEXT = (
    "Could you add a reminder to call the dentist on Friday morning, and move the budget "
    "review to next week? Also, what is still open on my list for the project deadline?"
)
"""The content every appended user message carries (≈ 170 characters)."""
W6_TAG = "work"
SAMPLE_CONVERSATIONS = 500


@dataclass(frozen=True)
class Params:
    """How much each workload does (the same for library, raw driver and HTTP)."""

    reads: int = 1_000
    writes: int = 300
    long_reads: int = 100
    """W2L: reads of the long conversation's last 50 (peers read all of it)."""
    long_writes: int = 100
    batch_total: int = 10_000
    batch_size: int = 100
    writers: int = 8
    per_writer: int = 250
    http_concurrency: int = 16
    http_seconds: float = 10.0
    """Each wrk measurement (route × server × connections) runs this long."""
    http_per_writer: int = 100
    """HTTP W5: appends per writer (8 writers), then the check."""
    warmup: int = 30
    workload_budget_s: float = 90.0
    """A latency workload stops its rounds (for every implementation alike) past this."""
    warm_budget_s: float = 20.0
    """Each implementation's warm-up read of the sampled conversations stops past this."""


@dataclass
class Fixture:
    """Conversations to hit at random and the heavy user (W3, W6)."""

    backend: str
    url: str
    heavy_user: uuid.UUID
    conversations: list[tuple[uuid.UUID, uuid.UUID]]
    long: tuple[uuid.UUID, uuid.UUID] | None = None
    """The long conversation (id, owner), when the dataset has one."""
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def targets(self, count: int, warmup: int) -> list[Conv]:
        """The conversation of each operation ``i`` (``-warmup … count-1``, at index
        ``i + warmup``): the same for every implementation taking turns."""
        rng = random.Random(count * 7919 + warmup)
        return [Conv(*rng.choice(self.conversations)) for _ in range(count + warmup)]

    @property
    def long_conv(self) -> Conv | None:
        return Conv(*self.long) if self.long else None

    @property
    def writer(self) -> uuid.UUID:
        """The user who owns the W4 and W5 conversations: the long conversation's owner, whom
        no read samples (not the heavy user, whose conversation list W3 reads: every append
        rewrites its conversation's row), so a reused dataset samples only loaded rows."""
        return self.long[1] if self.long else self.conversations[0][1]

    def pick(self) -> tuple[uuid.UUID, uuid.UUID]:
        """A random (conversation id, owner id) of a regular user."""
        return self.rng.choice(self.conversations)


def pg_plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def sqlite_file(url: str) -> Path:
    return Path(url.split("///", 1)[1])


async def load_fixture(backend: str, url: str) -> Fixture:
    if backend == "postgresql":
        conn = await asyncpg.connect(pg_plain(url))
        try:
            heavy = await conn.fetchval("SELECT id FROM users WHERE email = $1", HEAVY_EMAIL)
            long_owner = await conn.fetchval("SELECT id FROM users WHERE email = $1", LONG_EMAIL)
            rows = await conn.fetch(
                "SELECT id, user_id FROM conversations WHERE user_id <> $2 "
                "AND user_id IS DISTINCT FROM $3 "
                "ORDER BY random() LIMIT $1",
                SAMPLE_CONVERSATIONS,
                heavy,
                long_owner,
            )
            long = await conn.fetchrow(
                "SELECT id, user_id FROM conversations WHERE user_id = $1 "
                "ORDER BY created_at LIMIT 1",
                long_owner,
            )
        finally:
            await conn.close()
        pairs = [(r["id"], r["user_id"]) for r in rows]
        long_pair = (long["id"], long["user_id"]) if long else None
    else:
        heavy, pairs, long_pair = await asyncio.to_thread(_sqlite_fixture, sqlite_file(url))
    return Fixture(backend, url, heavy, sorted(pairs), long_pair)


Pair = tuple[uuid.UUID, uuid.UUID]


def _sqlite_fixture(path: Path) -> tuple[uuid.UUID, list[Pair], Pair | None]:
    db = sqlite3.connect(path)
    try:
        (heavy,) = db.execute("SELECT id FROM users WHERE email = ?", (HEAVY_EMAIL,)).fetchone()
        owner = db.execute("SELECT id FROM users WHERE email = ?", (LONG_EMAIL,)).fetchone()
        long_owner = owner[0] if owner else None
        rows = db.execute(
            "SELECT id, user_id FROM conversations WHERE user_id <> ? "
            "AND user_id IS NOT ? ORDER BY random() LIMIT ?",
            (heavy, long_owner, SAMPLE_CONVERSATIONS),
        ).fetchall()
        long = db.execute(
            "SELECT id, user_id FROM conversations WHERE user_id = ? ORDER BY created_at LIMIT 1",
            (long_owner,),
        ).fetchone()
    finally:
        db.close()
    pairs = [(uuid.UUID(c), uuid.UUID(u)) for c, u in rows]
    long_pair = (uuid.UUID(long[0]), uuid.UUID(long[1])) if long else None
    return uuid.UUID(heavy), pairs, long_pair


async def check_w5(
    backend: str, url: str, conversation_id: uuid.UUID, writers: int, per_writer: int
) -> dict[str, Any]:
    """Every message arrived exactly once, seqs are 1…n without gaps, ``messages_count`` is
    n, and each writer's messages (marked ``[w… n…]`` at the end of their content, see
    :func:`bench.impl.marked`) are in the order it sent them."""
    if backend == "postgresql":
        conn = await asyncpg.connect(pg_plain(url))
        try:
            count = await conn.fetchval(
                "SELECT messages_count FROM conversations WHERE id = $1", conversation_id
            )
            rows = await conn.fetch(
                "SELECT seq, content FROM messages WHERE conversation_id = $1 ORDER BY seq",
                conversation_id,
            )
        finally:
            await conn.close()
        pairs = [(r["seq"], r["content"]) for r in rows]
    else:
        count, pairs = await asyncio.to_thread(
            _sqlite_w5_rows, sqlite_file(url), conversation_id.hex
        )
    return _verdict(count, pairs, writers, per_writer)


def _sqlite_w5_rows(path: Path, cid: str) -> tuple[int, list[tuple[int, str]]]:
    db = sqlite3.connect(path)
    try:
        (count,) = db.execute(
            "SELECT messages_count FROM conversations WHERE id = ?", (cid,)
        ).fetchone()
        rows = db.execute(
            "SELECT seq, content FROM messages WHERE conversation_id = ? ORDER BY seq", (cid,)
        ).fetchall()
    finally:
        db.close()
    return count, [(seq, content) for seq, content in rows]


def _verdict(
    count: int, pairs: list[tuple[int, str]], writers: int, per_writer: int
) -> dict[str, Any]:
    expected = writers * per_writer
    seqs = [seq for seq, _ in pairs]
    per: dict[int, list[int]] = {}
    for _, content in pairs:
        found = MARK.search(content)
        if found:
            per.setdefault(int(found[1]), []).append(int(found[2]))
    in_order = all(ns == list(range(per_writer)) for ns in per.values())
    ok = (
        count == expected
        and seqs == list(range(1, expected + 1))
        and len(per) == writers
        and in_order
    )
    return {
        "ok": ok,
        "expected": expected,
        "stored": len(pairs),
        "messages_count": count,
        "seqs_contiguous": seqs == list(range(1, len(seqs) + 1)),
        "writers_in_order": in_order,
    }
