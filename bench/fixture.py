"""What the workloads need from a loaded dataset, read with the plain driver, and the W5
consistency check (the same for every implementation)."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench.dataset import HEAVY_EMAIL

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
    batch_total: int = 10_000
    batch_size: int = 100
    writers: int = 8
    per_writer: int = 500
    http_concurrency: int = 16
    http_requests: int = 2_000
    warmup: int = 30


@dataclass
class Fixture:
    """Conversations to hit at random and the heavy user (W3, W6)."""

    backend: str
    url: str
    heavy_user: uuid.UUID
    conversations: list[tuple[uuid.UUID, uuid.UUID]]
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def writer(self) -> uuid.UUID:
        """The regular user who owns the W4 and W5 conversations (not the heavy user, whose
        conversation list W3 reads: every append rewrites its conversation's row)."""
        return self.conversations[0][1]

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
            rows = await conn.fetch(
                "SELECT id, user_id FROM conversations WHERE user_id <> $2 "
                "ORDER BY random() LIMIT $1",
                SAMPLE_CONVERSATIONS,
                heavy,
            )
        finally:
            await conn.close()
        pairs = [(r["id"], r["user_id"]) for r in rows]
    else:
        heavy, pairs = await asyncio.to_thread(_sqlite_fixture, sqlite_file(url))
    return Fixture(backend, url, heavy, pairs)


def _sqlite_fixture(path: Path) -> tuple[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID]]]:
    db = sqlite3.connect(path)
    try:
        (heavy,) = db.execute("SELECT id FROM users WHERE email = ?", (HEAVY_EMAIL,)).fetchone()
        rows = db.execute(
            "SELECT id, user_id FROM conversations WHERE user_id <> ? ORDER BY random() LIMIT ?",
            (heavy, SAMPLE_CONVERSATIONS),
        ).fetchall()
    finally:
        db.close()
    return uuid.UUID(heavy), [(uuid.UUID(c), uuid.UUID(u)) for c, u in rows]


async def check_w5(
    backend: str, url: str, conversation_id: uuid.UUID, writers: int, per_writer: int
) -> dict[str, Any]:
    """Every message arrived exactly once, seqs are 1…n without gaps, ``messages_count`` is
    n, and each writer's messages are in the order it sent them."""
    if backend == "postgresql":
        conn = await asyncpg.connect(pg_plain(url))
        try:
            count = await conn.fetchval(
                "SELECT messages_count FROM conversations WHERE id = $1", conversation_id
            )
            rows = await conn.fetch(
                "SELECT seq, attributes::text AS a FROM messages WHERE conversation_id = $1 "
                "ORDER BY seq",
                conversation_id,
            )
        finally:
            await conn.close()
        pairs = [(r["seq"], json.loads(r["a"])) for r in rows]
    else:
        count, pairs = await asyncio.to_thread(
            _sqlite_w5_rows, sqlite_file(url), conversation_id.hex
        )
    return _verdict(count, pairs, writers, per_writer)


def _sqlite_w5_rows(path: Path, cid: str) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
    db = sqlite3.connect(path)
    try:
        (count,) = db.execute(
            "SELECT messages_count FROM conversations WHERE id = ?", (cid,)
        ).fetchone()
        rows = db.execute(
            "SELECT seq, attributes FROM messages WHERE conversation_id = ? ORDER BY seq", (cid,)
        ).fetchall()
    finally:
        db.close()
    return count, [(seq, json.loads(a)) for seq, a in rows]


def _verdict(
    count: int, pairs: list[tuple[int, dict[str, Any]]], writers: int, per_writer: int
) -> dict[str, Any]:
    expected = writers * per_writer
    seqs = [seq for seq, _ in pairs]
    per: dict[int, list[int]] = {}
    for _, attrs in pairs:
        per.setdefault(int(attrs["w"]), []).append(int(attrs["n"]))
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
