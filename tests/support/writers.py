"""Writers for fault tests: appends that retry an unknown outcome with the same
``Idempotency-Key`` until acknowledged, and what the store holds afterwards."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class Ledger:
    """What the writers saw: acknowledged message contents, and every status that was not 2xx."""

    acknowledged: list[str] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    first_ok_after: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def append_until_acknowledged(
    client: httpx.Client, url: str, headers: dict[str, str], content: str, ledger: Ledger
) -> None:
    key = uuid.uuid4().hex
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            response = client.post(
                url,
                json={"role": "user", "content": content},
                headers={**headers, "Idempotency-Key": key},
            )
        except httpx.TransportError as error:  # unknown outcome: retry with the same key
            with ledger.lock:
                ledger.failures[type(error).__name__] += 1
            time.sleep(0.05)
            continue
        if response.status_code in (200, 201):
            with ledger.lock:
                ledger.acknowledged.append(content)
                ledger.first_ok_after.setdefault("any", time.monotonic())
            return
        with ledger.lock:
            ledger.failures[str(response.status_code)] += 1
        if response.status_code == 409:  # the same key still in flight
            time.sleep(0.05)
            continue
        if response.status_code != 503:
            raise AssertionError(f"{response.status_code}: {response.text}")
        time.sleep(0.05)
    raise AssertionError(f"{content} never acknowledged")


def stored_contents(client: httpx.Client, headers: dict[str, str], convs: list[str]) -> list[str]:
    """Every stored message's content, after checking each conversation's invariants: seqs
    used once with no gap, ``messages_count`` equal to the rows (no partial transaction)."""
    stored: list[str] = []
    for conv in convs:
        meta = client.get(f"/api/v1/conversations/{conv}", headers=headers).json()
        path = f"/api/v1/conversations/{conv}/messages"
        page = client.get(path, params={"limit": 100}, headers=headers).json()
        items = page["items"]
        while page["has_more"]:
            params = {"limit": 100, "cursor": page["next_cursor"]}
            page = client.get(path, params=params, headers=headers).json()
            items = page["items"] + items
        assert sorted(m["seq"] for m in items) == list(range(1, len(items) + 1))
        assert meta["messages_count"] == len(items)
        stored += [m["content"] for m in items]
    return stored
