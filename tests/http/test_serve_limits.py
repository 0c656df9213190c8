"""``convstore serve`` bounds what it reads before any authentication: request heads (their
bytes and their number of header fields, 431) and WebSocket messages (close 1009, at the
frame's header). Each case runs against a real server process over raw sockets, reading its
peak resident memory from ``/proc``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.http.test_serve import start_serve, stop, wait_until_up
from tests.support.rawhttp import assert_refused, exchange, head, statuses

MAX_HEADER_BYTES = 65_536
MAX_HEADERS = 100
PEAK_GROWTH_KIB = 5 * 1024
"""What a refused request below may add to the server's peak resident memory, at most (uvicorn's
plain httptools protocol peaks at +32 MiB reading a 16 MiB header, +130 MiB for 64 MiB)."""


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int

    def _status_kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field}")

    def reset_peak(self) -> int:
        """Restart the peak resident memory (``VmHWM``) at the current one; that, in KiB."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        return self._status_kib("VmRSS")

    def peak_kib(self) -> int:
        return self._status_kib("VmHWM")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("serve-limits")
    log = tmp_path / "serve.log"
    proc, port = start_serve(
        tmp_path,
        log,
        "--no-access-log",
        CONVSTORE_DATABASE_URL=f"sqlite:///{tmp_path / 'l.db'}",
        CONVSTORE_MAX_BODY_BYTES="4096",
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_up(client, proc, log)
        yield Server(proc, port)
    finally:
        stop(proc)
    assert "Traceback" not in log.read_text(), log.read_text()


def test_normal_and_pipelined_requests_within_the_limits_are_answered(server: Server) -> None:
    near_limits = head(*((f"x-h{n}", "v") for n in range(MAX_HEADERS - 2)), ("x-big", "a" * 60_000))
    assert len(near_limits) < MAX_HEADER_BYTES
    keep_alive = head(("x-n", "1")) + head(("x-n", "2")) + near_limits
    assert statuses(exchange(server.port, keep_alive + head(("connection", "close")))) == [200] * 4


@pytest.mark.parametrize(
    "refused",
    [
        head(("x-big", "a" * 1024 * 1024)),
        head(("x-big", "a" * 16 * 1024 * 1024)),
        head(target="/healthz?" + "a" * 1024 * 1024),
        head(*((f"x-h{n}", "v") for n in range(1_000))),
        head(*((f"x-h{n}", "v") for n in range(MAX_HEADERS + 1))),
        head(("x-big", "a" * MAX_HEADER_BYTES)),
    ],
    ids=["1-MiB-header", "16-MiB-header", "1-MiB-url", "1000-headers", "101-headers", "64-KiB"],
)
def test_a_request_head_over_the_limits_is_refused_without_reading_it(
    server: Server, refused: bytes
) -> None:
    exchange(server.port, head(("x-big", "a" * 2 * MAX_HEADER_BYTES)))  # warm the refusal path
    before = server.reset_peak()
    answer = exchange(server.port, refused)
    assert server.peak_kib() - before < PEAK_GROWTH_KIB
    assert_refused(answer)
    assert statuses(exchange(server.port, head(("connection", "close")))) == [200]


def test_a_pipelined_request_over_the_limits_is_refused_after_the_good_one(server: Server) -> None:
    too_many = head(*((f"x-h{n}", "v") for n in range(MAX_HEADERS + 1)))
    assert statuses(exchange(server.port, head() + too_many)) == [200, 431]


def test_a_431_is_a_short_plain_answer(server: Server) -> None:
    answer = exchange(server.port, head(*((f"x-h{n}", "v") for n in range(MAX_HEADERS + 1))))
    status_head, _, body = answer.partition(b"\r\n\r\n")
    assert statuses(status_head) == [431]
    assert body == b"Request Header Fields Too Large"


def test_a_websocket_message_over_the_body_limit_is_closed_by_the_server(server: Server) -> None:
    """uvicorn's own bound (``ws_max_size`` = ``CONVSTORE_MAX_BODY_BYTES``): the socket closes
    with 1009 before the application sees the message (the application's check would answer
    an error frame first)."""
    url = f"ws://127.0.0.1:{server.port}/api/v1/chat/ws"
    with connect(url, open_timeout=10, close_timeout=2) as ws:
        ws.send(json.dumps({"type": "auth", "token": "x" * 5_000}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
