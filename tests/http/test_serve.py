"""``convstore serve`` as a real process: uvicorn on a free port, driven with httpx."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from convstore import migrate
from tests.support.api import PASSWORD, TEST_SECRET
from tests.support.rawhttp import assert_refused, exchange, head, statuses

CONVSTORE = shutil.which("convstore", path=str(Path(sys.executable).parent)) or "convstore"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(client: httpx.Client, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if client.get("/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"serve did not answer within {START_TIMEOUT} s:\n{log.read_text()}")


def declare_only(port: int, path: str, headers: dict[str, str], length: int) -> tuple[int, bytes]:
    """Send only the head of a request declaring a ``length``-byte body (as a client waiting
    for ``100 Continue`` would); the server must refuse it without reading any body."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += ["Content-Type: application/json", f"Content-Length: {length}"]
    lines += ["Expect: 100-continue"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"application/problem+json" in head.lower(), head
    return int(head.split(b" ", 2)[1]), body


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM (a graceful uvicorn shutdown), then SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
            raise AssertionError("serve ignored SIGTERM") from None
    return int(proc.returncode)


def start_serve(
    tmp_path: Path, log: Path, *args: str, **env_extra: str
) -> tuple[subprocess.Popen[bytes], int]:
    """``convstore serve`` on a free loopback port with fast test hashing and a fixed secret,
    its output in ``log``; extra ``args`` go on the command line and ``env_extra`` into the
    environment (no other ``CONVSTORE_*`` variable leaks in)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVSTORE_")}
    env.update(
        CONVSTORE_SECRET_KEY=TEST_SECRET,
        CONVSTORE_PASSWORD_HASH_TIME_COST="2",
        CONVSTORE_PASSWORD_HASH_MEMORY_KIB="19456",
        CONVSTORE_PASSWORD_HASH_PARALLELISM="1",
        **env_extra,
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [CONVSTORE, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, port


def test_serve_end_to_end(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    proc, port = start_serve(tmp_path, log, CONVSTORE_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_up(client, proc, log)
            email = "serve@example.com"
            creds = {"email": email, "password": PASSWORD}
            assert client.post("/api/v1/auth/register", json=creds).status_code == 201
            login = client.post(
                "/api/v1/auth/login", data={"username": email, "password": PASSWORD}
            )
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            conv = client.post("/api/v1/conversations", json={"title": "live"}, headers=headers)
            assert conv.status_code == 201, conv.text
            messages = f"{conv.headers['location']}/messages"
            for i, role in enumerate(["user", "assistant", "user"]):
                appended = client.post(
                    messages,
                    json={"role": role, "content": f"m{i}"},
                    headers={**headers, "Idempotency-Key": f"serve-{i}"},
                )
                assert appended.status_code == 201, appended.text
                assert appended.json()["seq"] == i + 1
            replayed = client.post(
                messages,
                json={"role": "user", "content": "m2"},
                headers={**headers, "Idempotency-Key": "serve-2"},
            )
            assert replayed.headers["idempotent-replayed"] == "true"
            page = client.get(messages, headers=headers)
            assert [m["content"] for m in page.json()["items"]] == ["m0", "m1", "m2"]
            assert page.headers["x-request-id"]

            status, body = declare_only(port, messages, headers, 10 * 1024 * 1024)
            assert status == 413
            assert json.loads(body)["code"] == "body_too_large"
    finally:
        code = stop(proc)
    output = log.read_text()
    assert "migrated the database from empty to " + migrate.head_revision() in output, output
    assert code in (0, -signal.SIGTERM), output  # uvicorn re-raises the signal it handled
    assert "Application shutdown complete" in output, output
    assert "Traceback" not in output, output


def test_serve_workers_without_access_log(tmp_path: Path) -> None:
    """``--workers 2 --no-access-log``: the database is migrated once, before the workers start;
    each worker answers, and bounds request heads as configured; no request is logged; SIGTERM
    stops them all."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    log = tmp_path / "serve.log"
    proc, port = start_serve(
        tmp_path,
        log,
        "--database-url",
        url,
        "--workers",
        "2",
        "--no-access-log",
        CONVSTORE_MAX_HEADERS="20",
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_up(client, proc, log)
            creds = {"email": "workers@example.com", "password": PASSWORD}
            assert client.post("/api/v1/auth/register", json=creds).status_code == 201
            login = client.post("/api/v1/auth/login", json=creds)
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            for _ in range(20):  # on new connections, so that both workers take some
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as fresh:
                    assert fresh.get("/api/v1/conversations", headers=headers).status_code == 200
            for _ in range(4):
                assert_refused(exchange(port, head(("x-big", "a" * 1024 * 1024))))
                assert statuses(exchange(port, head(*((f"x-{n}", "v") for n in range(21))))) == [
                    431
                ]
    finally:
        code = stop(proc)
    output = log.read_text()
    assert output.count("migrated the database from empty to ") == 1, output
    assert output.count("Application startup complete") == 2, output
    assert "rate-limit storage: each worker counts on its own" in output, output
    assert "GET /api/v1/conversations" not in output, output
    assert code in (0, -signal.SIGTERM), output
    assert "Traceback" not in output, output


def test_serve_access_log_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    """One line per request unless ``CONVSTORE_ACCESS_LOG=false``."""
    outputs = []
    for access_log in (None, "false"):
        env = {"CONVSTORE_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
        if access_log is not None:
            env["CONVSTORE_ACCESS_LOG"] = access_log
        log = tmp_path / f"serve-{access_log}.log"
        proc, port = start_serve(tmp_path, log, **env)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                wait_until_up(client, proc, log)
                assert client.get("/api/v1/conversations").status_code == 401
        finally:
            stop(proc)
        outputs.append(log.read_text())
    logged, quiet = outputs
    assert "GET /api/v1/conversations 401" in logged, logged
    assert "GET /api/v1/conversations" not in quiet, quiet


def raw_request(port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, list[str]], bytes]:
    """Send ``head`` (request line and headers, no blank line) on a fresh connection that
    closes after the answer; the status, headers (lower-cased names, every value) and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + b"\r\nConnection: close\r\n\r\n" + body)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head_bytes, _, content = raw.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split(" ", 2)[1]), headers, content


def test_serve_answers_nothing_derived_from_host_and_marks_every_response(
    tmp_path: Path,
) -> None:
    """A foreign ``Host`` never comes back (no trailing-slash redirect built from it); every
    response says ``nosniff``, carries a Date, and no Server header advertises the stack."""
    log = tmp_path / "serve.log"
    proc, port = start_serve(tmp_path, log, CONVSTORE_DATABASE_URL=f"sqlite:///{tmp_path / 'h.db'}")
    host = "Host: evil.example"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_up(client, proc, log)
        login = b'{"email": "nobody@example.com", "password": "wrong password"}'
        requests: list[tuple[str, bytes, int]] = [
            (f"GET /api/v1/tasks/ HTTP/1.1\r\n{host}", b"", 404),
            (f"GET /api/v1/conversations/ HTTP/1.1\r\n{host}", b"", 404),
            (f"GET /healthz/ HTTP/1.1\r\n{host}", b"", 404),
            (f"GET /docs/ HTTP/1.1\r\n{host}", b"", 404),
            (f"GET /mcp/ HTTP/1.1\r\n{host}", b"", 404),
            (
                f"POST /api/v1/auth/login/ HTTP/1.1\r\n{host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(login)}",
                login,
                404,
            ),
            (f"GET /healthz HTTP/1.1\r\n{host}", b"", 200),
            (f"GET /docs HTTP/1.1\r\n{host}", b"", 200),
            (f"GET /openapi.json HTTP/1.1\r\n{host}", b"", 200),
            (f"GET /api/v1/tasks HTTP/1.1\r\n{host}", b"", 401),
            (f"PUT /api/v1/tasks HTTP/1.1\r\n{host}\r\nContent-Length: 0", b"", 405),
            (f"POST /mcp HTTP/1.1\r\n{host}\r\nContent-Length: 0", b"", 401),
            (
                f"POST /api/v1/auth/login HTTP/1.1\r\n{host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(login)}",
                login,
                401,
            ),
            (
                f"POST /api/v1/auth/register HTTP/1.1\r\n{host}\r\n"
                "Content-Type: application/json\r\nContent-Length: 2",
                b"[]",
                422,
            ),
            (
                f"POST /api/v1/auth/login HTTP/1.1\r\n{host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {10 * 1024 * 1024}",
                b"",
                413,
            ),
        ]
        for head, body, expected in requests:
            status, headers, content = raw_request(port, head, body)
            where = head.splitlines()[0]
            assert status == expected, (where, status, content[:300])
            everything = (repr(headers) + content.decode("latin-1")).lower()
            assert "evil.example" not in everything, (where, headers, content[:300])
            assert "location" not in headers, (where, headers)
            assert headers.get("x-content-type-options") == ["nosniff"], (where, headers)
            assert "server" not in headers, (where, headers)
            assert len(headers.get("date", [])) == 1, (where, headers)
    finally:
        code = stop(proc)
    output = log.read_text()
    assert code in (0, -signal.SIGTERM), output
    assert "Traceback" not in output, output
