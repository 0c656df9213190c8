"""No lost or duplicated message under concurrent appends through a live server: 8 writers × 200
appends to one conversation, then 8 × 200 spread over 50 conversations (``CONVSTORE_STRESS_APPENDS``
raises it; ``make fuzz`` runs 500), each writer on its own
connection. Every append must be acknowledged (no 5xx, no "database is locked"), and afterwards
``messages_count == COUNT(*)`` with ``seq`` exactly 1..n in every conversation."""

from __future__ import annotations

import asyncio
import os
import uuid

import httpx
import pytest
from sqlalchemy import select

from convstore import Store
from convstore.app import create_app
from convstore.conversations.models import Conversation, Message
from tests.http.helpers import API
from tests.support.api import Account, api_settings, register
from tests.support.live import serving

WRITERS = 8
APPENDS = int(os.environ.get("CONVSTORE_STRESS_APPENDS", "200"))


async def _writer(base: str, account: Account, targets: list[str], start: int) -> list[int]:
    """Append APPENDS messages, cycling through ``targets``; the status of every answer."""
    statuses = []
    async with httpx.AsyncClient(base_url=base, headers=account.headers, timeout=30) as client:
        for i in range(APPENDS):
            conv = targets[(start + i) % len(targets)]
            answer = await client.post(
                f"{API}/conversations/{conv}/messages",
                json={"role": "user", "content": f"writer {start} message {i}"},
            )
            statuses.append(answer.status_code)
    return statuses


async def _shape(store: Store, conv: str) -> tuple[int, int, list[int]]:
    """(messages_count, COUNT(*), the seqs in order) of one conversation, straight from SQL."""
    conv_id = uuid.UUID(conv)
    count_stmt = select(Conversation.messages_count).where(Conversation.id == conv_id)
    seq_stmt = select(Message.seq).where(Message.conversation_id == conv_id).order_by(Message.seq)
    async with store.db.engine.connect() as conn:
        count = (await conn.execute(count_stmt)).scalar_one()
        seqs = list((await conn.execute(seq_stmt)).scalars())
    return int(count), len(seqs), seqs


@pytest.mark.parametrize("conversations", [1, 50])
async def test_concurrent_appends_through_a_live_server_lose_nothing(
    database_url: str, store: Store, conversations: int
) -> None:
    app = create_app(api_settings(database_url))
    async with serving(app, lifespan="on") as base:
        async with httpx.AsyncClient(base_url=base) as client:
            account = await register(client)
            targets = []
            for n in range(conversations):
                made = await client.post(
                    f"{API}/conversations", json={"title": f"c{n}"}, headers=account.headers
                )
                assert made.status_code == 201, made.text
                targets.append(made.json()["id"])
        results = await asyncio.gather(
            *(_writer(base, account, targets, w) for w in range(WRITERS))
        )

    statuses = [status for writer in results for status in writer]
    assert len(statuses) == WRITERS * APPENDS
    assert set(statuses) == {201}, {s: statuses.count(s) for s in set(statuses)}
    total = 0
    for conv in targets:
        count, rows, seqs = await _shape(store, conv)
        assert count == rows, conv
        assert seqs == list(range(1, rows + 1)), conv
        total += rows
    assert total == WRITERS * APPENDS
