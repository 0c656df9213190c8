"""Faults on a live server over SQLite: two ``convstore serve`` processes on one database file,
8 writers spread over both (the dropped-stream storm is in tests/http/test_dropped_streams.py).
SQLite admits one writer at a time across processes: the writers must queue on its lock
(``busy_timeout``), never lose or duplicate a message, never see a 5xx."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.http.test_serve import start_serve, stop, wait_until_up
from tests.support.api import PASSWORD
from tests.support.writers import Ledger, append_until_acknowledged, stored_contents

WRITERS = 8
PER_WRITER = 50
CONVERSATIONS = 3


def test_two_servers_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {"CONVSTORE_DATABASE_URL": url, "CONVSTORE_RATE_LIMIT_ENABLED": "false"}
    first, first_port = start_serve(tmp_path, tmp_path / "first.log", **env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{first_port}", timeout=15) as client:
            wait_until_up(client, first, tmp_path / "first.log")  # migrated by the first
        second, second_port = start_serve(tmp_path, tmp_path / "second.log", **env)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{second_port}", timeout=15) as other:
                wait_until_up(other, second, tmp_path / "second.log")
                creds = {"email": "two@example.com", "password": PASSWORD}
                assert other.post("/api/v1/auth/register", json=creds).status_code == 201
                token = other.post("/api/v1/auth/login", json=creds).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                convs = [
                    other.post("/api/v1/conversations", json={}, headers=headers).json()["id"]
                    for _ in range(CONVERSATIONS)
                ]
                ledger = Ledger()
                ports = [first_port, second_port]

                def writer(n: int) -> None:
                    base = f"http://127.0.0.1:{ports[n % 2]}"
                    with httpx.Client(base_url=base, timeout=15) as own:
                        for i in range(PER_WRITER):
                            conv = convs[(n + i) % CONVERSATIONS]
                            path = f"/api/v1/conversations/{conv}/messages"
                            append_until_acknowledged(own, path, headers, f"w{n}-{i}", ledger)

                with ThreadPoolExecutor(WRITERS) as pool:
                    list(pool.map(writer, range(WRITERS)))
                stored = stored_contents(other, headers, convs)
        finally:
            stop(second)
    finally:
        stop(first)
    assert sorted(stored) == sorted(ledger.acknowledged)
    assert len(stored) == WRITERS * PER_WRITER
    assert ledger.failures == {}, ledger.failures
    for log in ("first.log", "second.log"):
        output = (tmp_path / log).read_text()
        assert "Traceback" not in output, output
