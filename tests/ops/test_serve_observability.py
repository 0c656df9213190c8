"""``convstore serve`` as operators run it: JSON log lines carrying the request id and user,
and metrics summed over ``--workers``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.http.test_serve import start_serve, stop, wait_until_up
from tests.support.api import PASSWORD

API = "/api/v1"


def _lines(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_json_logs_carry_the_request_id_and_user_and_no_token(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    db = f"sqlite:///{tmp_path / 'logs.db'}"
    proc, port = start_serve(tmp_path, log, CONVSTORE_DATABASE_URL=db, CONVSTORE_LOG_FORMAT="json")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_up(client, proc, log)
            email = "logs@example.com"
            creds = {"email": email, "password": PASSWORD}
            registered = client.post(f"{API}/auth/register", json=creds)
            assert registered.status_code == 201
            token = client.post(f"{API}/auth/login", json=creds).json()["access_token"]
            failed = client.post(
                f"{API}/auth/login",
                json={"email": email, "password": "not the password at all"},
                headers={"X-Request-ID": "req-failed-login"},
            )
            assert failed.status_code == 401
            me = client.get(
                f"{API}/auth/me",
                headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-me"},
            )
            assert me.status_code == 200
            user_id = me.json()["id"]
    finally:
        stop(proc)
    records = _lines(log)
    for record in records:
        assert {"ts", "level", "logger", "message"} <= record.keys(), record
    assert token not in log.read_text()
    assert PASSWORD not in log.read_text()
    assert any(r["logger"].startswith("uvicorn") for r in records)  # uvicorn's lines too

    failed_lines = [r for r in records if r.get("request_id") == "req-failed-login"]
    assert {r["logger"] for r in failed_lines} == {"convstore.http", "convstore.access"}
    assert any("authentication failed" in r["message"] for r in failed_lines)

    (access,) = [r for r in records if r.get("request_id") == "req-me"]
    assert access["logger"] == "convstore.access"
    assert access["user_id"] == user_id
    assert access["route"] == f"{API}/auth/me"
    assert access["method"] == "GET"
    assert access["status"] == 200
    assert isinstance(access["duration_ms"], float)


def test_text_logs_and_no_access_log(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    db = f"sqlite:///{tmp_path / 'text.db'}"
    proc, port = start_serve(
        tmp_path, log, "--no-access-log", CONVSTORE_DATABASE_URL=db, CONVSTORE_LOG_FORMAT="text"
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_up(client, proc, log)
            bad = client.get(
                f"{API}/auth/me", headers={"Authorization": "Bearer x", "X-Request-ID": "req-t"}
            )
            assert bad.status_code == 401
    finally:
        stop(proc)
    text = log.read_text()
    assert "[req-t] authentication failed" in text
    assert "convstore.access" not in text
    assert "Application startup complete" in text


def _total(text: str, route: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "convstore_http_requests_total" and s.labels.get("route") == route
    )


def test_two_workers_sum_their_counters(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    db = f"sqlite:///{tmp_path / 'workers.db'}"
    proc, port = start_serve(
        tmp_path,
        log,
        "--workers",
        "2",
        CONVSTORE_DATABASE_URL=db,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    requests = 60
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            wait_until_up(client, proc, log)
        for _ in range(requests):  # a new connection each: the kernel spreads them
            with httpx.Client(base_url=base, timeout=10) as one:
                assert one.get("/readyz").status_code == 200
        scrapes = []
        for _ in range(10):
            with httpx.Client(base_url=base, timeout=10) as one:
                scrapes.append(_total(one.get("/metrics").text, "/readyz"))
    finally:
        stop(proc)
    pids = {p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}
    assert len(pids) == 2, pids  # both workers counted requests
    assert scrapes == [requests] * len(scrapes)  # whichever worker answers, the sum
