"""The HTTP server of ``convstore serve``: uvicorn's options, and an HTTP/1.1 protocol that bounds
request heads before anything else reads them.

uvicorn's httptools protocol has no bound on a request head: httptools gathers the pieces of a
header in memory until the header ends (by repeated concatenation), so one endless header, or a
flood of small ones, costs memory and CPU before any authentication. h11 bounds the head
(``h11_max_incomplete_event_size``) but parses in Python, markedly slower.
:class:`BoundedHttpToolsProtocol` keeps httptools and counts what it feeds it.

The subclass relies on uvicorn's ``HttpToolsProtocol`` callbacks (``on_header``,
``on_headers_complete``, ``on_message_complete``, ``on_response_complete``,
``send_400_response``) and fields (``transport``, ``flow``, ``cycle``, ``pipeline``,
``server_state``): pyproject.toml bounds uvicorn to the versions it was checked against.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from convstore.config import Settings, get_settings

TOO_LARGE = b"Request Header Fields Too Large"
PROTOCOL = "convstore.http.server:BoundedHttpToolsProtocol"


class _TooManyHeaders(Exception):
    """Raised from the parser's header callback: stops httptools in the middle of the head."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering 431 and closing the connection when a request
    head (the request line and the header fields) exceeds ``max_header_bytes`` or has more than
    ``max_headers`` fields, without reading the rest of it.

    While a head is open, data goes to the parser at most ``max_header_bytes + 1`` bytes at a
    time, counted; bodies go through whole. The count restarts at the end of each request, so a
    pipelined head that starts inside a chunk with the previous body is counted from the next
    chunk on: the parser holds at most one more read of the event loop (256 KiB) of it.
    Earlier pipelined requests are answered before the 431.

    The bounds are ``CONVSTORE_MAX_HEADER_BYTES`` and ``CONVSTORE_MAX_HEADERS`` of the process's
    settings (:func:`get_settings`), so ``uvicorn --http
    convstore.http.server:BoundedHttpToolsProtocol`` honours them too.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = get_settings()
        self.max_header_bytes = settings.max_header_bytes
        self.max_headers = settings.max_headers
        self._head_open = True
        self._head_bytes = 0
        self._header_count = 0
        self._refusing = False

    def data_received(self, data: bytes) -> None:
        while data and not self._refusing:
            if not self._head_open:
                super().data_received(data)
                return
            room = self.max_header_bytes + 1 - self._head_bytes
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # refused as invalid, or upgraded to a WebSocket
            if self._head_open and self._head_bytes > self.max_header_bytes:
                self.logger.warning("Request head over %d bytes refused.", self.max_header_bytes)
                self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            self._refuse()
            raise _TooManyHeaders  # uvicorn logs it as an invalid request
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_open = True
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        if not self._refusing:
            super().send_400_response(msg)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._refusing and self._idle():
            self._send_431()

    def _refuse(self) -> None:
        """Read nothing more; answer 431 once the responses to earlier requests are out."""
        self._refusing = True
        self.flow.pause_reading()
        if self._idle():
            self._send_431()

    def _idle(self) -> bool:
        return (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _send_431(self) -> None:
        if self.transport.is_closing():
            return
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(TOO_LARGE),
            b"connection: close\r\n\r\n",
            TOO_LARGE,
        ]
        self.transport.write(b"".join(content))
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What ``convstore serve`` gives uvicorn to bound what a client makes it read: request
    heads (the protocol above) and WebSocket messages (``ws_max_size``, checked at each frame's
    header).

    The protocol is named, not given: a ``--workers`` child unpickles its options before it
    answers uvicorn's health checks (5 s), and importing convstore then could take too long;
    a name is imported later, when the child loads the application.
    """
    return {"http": PROTOCOL, "ws_max_size": settings.max_body_bytes}
