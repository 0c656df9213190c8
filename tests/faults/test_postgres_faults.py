"""Faults on a live server over PostgreSQL, each against a throwaway cluster
the test starts itself: backends terminated every second under 8 writers, a restart mid-run,
and a server that is shutting down.

The writers append with an ``Idempotency-Key`` per message and retry an unknown outcome (a 503,
a dropped connection, a timeout) with the same key, as a client must. Afterwards every
acknowledged message is stored exactly once, ``messages_count`` equals the rows, every seq is
used once with no gap, no request failed other than with a 503, and no transaction is left open.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.http.test_serve import start_serve, stop, wait_until_up
from tests.support.api import PASSWORD, api_settings, client_for, register, running_app
from tests.support.cluster import Cluster, throwaway_cluster
from tests.support.writers import Ledger, append_until_acknowledged, stored_contents

pytestmark = pytest.mark.postgres

WRITERS = 8
PER_WRITER = 40
CONVERSATIONS = 2
KILL_EVERY = 1.0
KILL_ROUNDS = 6  # the killer's schedule: a kill every second, the third round a fast restart
RESTART_ROUND = 3


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as running:
        yield running


def _terminate_backends(cluster: Cluster, database: str) -> int:
    import asyncio

    async def go() -> int:
        admin = await asyncpg.connect(cluster.url)
        try:
            killed = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        finally:
            await admin.close()
        return len(killed)

    return asyncio.run(go())


def _count_open_transactions(cluster: Cluster, database: str) -> int:
    import asyncio

    async def go() -> int:
        admin = await asyncpg.connect(cluster.url)
        try:
            count: int = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                "AND state LIKE 'idle in transaction%'",
                database,
            )
        finally:
            await admin.close()
        return count

    return asyncio.run(go())


def _create_database(cluster: Cluster, name: str) -> str:
    import asyncio

    async def go() -> None:
        admin = await asyncpg.connect(cluster.url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    asyncio.run(go())
    return f"postgresql://postgres@127.0.0.1:{cluster.port}/{name}"


def test_writers_survive_terminated_backends_and_a_restart(
    cluster: Cluster, tmp_path: Path
) -> None:
    database = "faults"
    url = _create_database(cluster, database)
    log = tmp_path / "serve.log"
    proc, port = start_serve(
        tmp_path,
        log,
        CONVSTORE_DATABASE_URL=url,
        CONVSTORE_RATE_LIMIT_ENABLED="false",
        CONVSTORE_DB_POOL_TIMEOUT="5",
    )
    ledger = Ledger()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15) as client:
            wait_until_up(client, proc, log)
            creds = {"email": "faults@example.com", "password": PASSWORD}
            assert client.post("/api/v1/auth/register", json=creds).status_code == 201
            token = client.post("/api/v1/auth/login", json=creds).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            convs = [
                client.post("/api/v1/conversations", json={}, headers=headers).json()["id"]
                for _ in range(CONVERSATIONS)
            ]

            stop_killing = threading.Event()
            schedule_done = threading.Event()
            kills: list[int] = []
            restarted: dict[str, float] = {}
            written = [0] * WRITERS

            def killer() -> None:
                # The whole schedule runs whatever the machine's speed: writers go on until it ends.
                for round_ in range(1, KILL_ROUNDS + 1):
                    if stop_killing.wait(KILL_EVERY):
                        break
                    if round_ == RESTART_ROUND:  # once: a fast restart mid-run
                        cluster.restart("fast")
                        restarted["up"] = time.monotonic()
                        ledger.first_ok_after.pop("any", None)
                        continue
                    kills.append(_terminate_backends(cluster, database))
                schedule_done.set()

            def writer(n: int) -> None:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15) as own:
                    i = 0
                    while i < PER_WRITER or not schedule_done.is_set():
                        target = f"/api/v1/conversations/{convs[(n + i) % CONVERSATIONS]}/messages"
                        append_until_acknowledged(own, target, headers, f"w{n}-{i}", ledger)
                        i += 1
                        written[n] = i
                        time.sleep(0.02)

            kill_thread = threading.Thread(target=killer)
            kill_thread.start()
            try:
                with ThreadPoolExecutor(WRITERS) as pool:
                    list(pool.map(writer, range(WRITERS)))
            finally:
                stop_killing.set()
                kill_thread.join()

            stored = stored_contents(client, headers, convs)
    finally:
        stop(proc)
    assert sum(kills) > 0, "the killer never found a backend of the app"
    assert "up" in restarted
    back_after = ledger.first_ok_after["any"] - restarted["up"]
    assert back_after <= 1.0, f"first 2xx {back_after:.2f} s after PostgreSQL came back"
    assert sorted(stored) == sorted(ledger.acknowledged)  # every ack stored, exactly once
    assert len(ledger.acknowledged) == sum(written) >= WRITERS * PER_WRITER
    assert set(ledger.failures) <= {"503", "409", "ReadError", "RemoteProtocolError"}, (
        ledger.failures
    )
    assert _count_open_transactions(cluster, database) == 0
    output = log.read_text()
    assert "Traceback" not in output, output


async def test_a_server_that_is_shutting_down_answers_503(cluster: Cluster) -> None:
    """A smart shutdown waits for its sessions to end and refuses new ones meanwhile ("the
    database system is shutting down", SQLSTATE 57P03): a 503, not a 500."""
    settings = api_settings(cluster.url)
    async with running_app(settings) as app, client_for(app) as client:
        account = await register(client)
        holder = await asyncpg.connect(cluster.url)  # keeps the shutdown waiting
        try:
            await app.state.store.db.engine.dispose()  # the next request needs a connection
            cluster.stop("smart", wait=False)
            answers = Counter()
            for _ in range(20):
                response = await client.get("/api/v1/conversations", headers=account.headers)
                answers[response.status_code] += 1
                if response.status_code == 503:
                    assert response.json()["code"] == "database_unavailable"
            assert answers == {503: 20}, answers
        finally:
            await holder.close()
