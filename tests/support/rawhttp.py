"""Raw HTTP/1.1 over a socket, for what a client library would not send: oversized heads,
thousands of headers, pipelined requests."""

from __future__ import annotations

import re
import socket

STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def head(*headers: tuple[str, str], target: str = "/healthz") -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` in pieces, as a client streaming it would, and read until the server
    closes (the last request asks it to, or it refuses one). A server that stopped reading may
    reset the connection: what arrived before counts."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            for start in range(0, len(data), 65_536):
                sock.sendall(data[start : start + 65_536])
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(65_536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def statuses(answer: bytes) -> list[int]:
    """The status codes of the responses in ``answer``, in order (a status line follows the
    previous body directly)."""
    return [int(code) for code in STATUS_LINE.findall(answer)]


def assert_refused(answer: bytes) -> None:
    """Refused with 431 and the connection closed — or, when the rest of the request was still
    arriving, the connection reset before the answer was read; never answered otherwise."""
    assert statuses(answer) in ([431], []), answer[:300]
    if answer:
        assert b"connection: close" in answer.lower(), answer[:300]
