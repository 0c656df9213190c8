"""The service's Prometheus metrics (prometheus-client, in the server extra), recorded where
the work happens and exposed at ``/metrics``.

Without prometheus-client (the storage library installed on its own) every recording is a no-op.
Under ``convstore serve --workers N`` the values live in prometheus-client's multiprocess files
(``PROMETHEUS_MULTIPROC_DIR``, set by ``serve``), and a scrape of any worker sums them all.
"""

from __future__ import annotations

import importlib.util
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

ENABLED = importlib.util.find_spec("prometheus_client") is not None

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MODEL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


class _Off:
    """What a metric is without prometheus-client: accepts every recording, keeps nothing."""

    def labels(self, *values: str) -> _Off:
        return self

    def inc(self, amount: float = 1) -> None:
        return None

    def dec(self, amount: float = 1) -> None:
        return None

    def set(self, value: float) -> None:
        return None

    def observe(self, value: float) -> None:
        return None


def _metrics() -> dict[str, Any]:
    if not ENABLED:
        off = _Off()
        return dict.fromkeys(_NAMES, off)
    from prometheus_client import Counter, Gauge, Histogram

    return {
        "http_requests": Counter(
            "convstore_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
        ),
        "http_duration": Histogram(
            "convstore_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by method and route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
        ),
        "pool_in_use": Gauge(
            "convstore_db_pool_connections_in_use",
            "Database connections checked out of the pool (every worker together).",
            multiprocess_mode="livesum",
        ),
        "pool_overflow": Gauge(
            "convstore_db_pool_overflow",
            "Connections in use beyond the pool size (CONVSTORE_DB_MAX_OVERFLOW bounds them).",
            multiprocess_mode="livesum",
        ),
        "pool_size": Gauge(
            "convstore_db_pool_size",
            "Connections the pools keep (CONVSTORE_DB_POOL_SIZE times the workers).",
            multiprocess_mode="livesum",
        ),
        "chat_turns": Counter(
            "convstore_chat_turns",
            "Chat turns ended, by provider and outcome (complete, error, timeout, interrupted).",
            ["provider", "outcome"],
        ),
        "chat_duration": Histogram(
            "convstore_chat_turn_duration_seconds",
            "A chat turn from the start of its reply to the stored end, by provider.",
            ["provider"],
            buckets=MODEL_BUCKETS,
        ),
        "provider_duration": Histogram(
            "convstore_provider_request_duration_seconds",
            "One model request, sent to the end of its streamed answer, by provider.",
            ["provider"],
            buckets=MODEL_BUCKETS,
        ),
        "provider_errors": Counter(
            "convstore_provider_errors",
            "Failed model requests, by provider and kind (timeout, error).",
            ["provider", "kind"],
        ),
        "messages_appended": Counter(
            "convstore_messages_appended",
            "Messages validated and written in an append, by role.",
            ["role"],
        ),
    }


_NAMES = (
    "http_requests",
    "http_duration",
    "pool_in_use",
    "pool_overflow",
    "pool_size",
    "chat_turns",
    "chat_duration",
    "provider_duration",
    "provider_errors",
    "messages_appended",
)
_M = _metrics()


_CHILDREN: dict[tuple[str, tuple[str, ...]], Any] = {}


def _child(name: str, *values: str) -> Any:
    """The child of metric ``name`` for label ``values``, looked up once: prometheus-client's
    ``labels`` checks and locks on every call (the same child each time; convstore never
    removes one), and the hot paths record a metric per request and per append."""
    key = (name, values)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN.setdefault(key, _M[name].labels(*values))
    return child


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    _child("http_requests", method, route, str(status)).inc()
    _child("http_duration", method, route).observe(seconds)


def messages_appended(items: Sequence[Any]) -> None:
    """Count appended messages (anything with a ``role``): one increment per role, not per
    message (a batch of 100 spent 0.2 ms looking its labels up 100 times)."""
    if len(items) == 1:
        _child("messages_appended", items[0].role).inc()
        return
    for role, count in Counter(item.role for item in items).items():
        _child("messages_appended", role).inc(count)


def chat_turn(provider: str, outcome: str, seconds: float) -> None:
    _M["chat_turns"].labels(provider, outcome).inc()
    _M["chat_duration"].labels(provider).observe(seconds)


@contextmanager
def provider_request(provider: str) -> Iterator[None]:
    """Time one model request; a failure counts as an error, one whose class names a timeout
    (``TimeoutError``, convstore's ``ProviderTimeout``) as a timeout. A request cut short by
    its caller (a cancelled turn, a closed stream) is timed, not counted as failed."""
    started = time.perf_counter()
    try:
        yield
    except Exception as exc:
        kind = "timeout" if "Timeout" in type(exc).__name__ else "error"
        _M["provider_errors"].labels(provider, kind).inc()
        raise
    finally:
        _M["provider_duration"].labels(provider).observe(time.perf_counter() - started)


class PoolGauges:
    """Keeps the pool gauges of one engine current: its checkouts and check-ins move them
    (so every worker's share is in its multiprocess file at any scrape)."""

    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size
        self.in_use = 0
        _M["pool_size"].inc(pool_size)

    def checkout(self, *_: object) -> None:
        self.in_use += 1
        self._publish(+1)

    def checkin(self, *_: object) -> None:
        self.in_use -= 1
        self._publish(-1)

    def _publish(self, step: int) -> None:
        _M["pool_in_use"].inc(step)
        over_before = max(0, self.in_use - step - self.pool_size)
        over_now = max(0, self.in_use - self.pool_size)
        if over_now != over_before:
            _M["pool_overflow"].inc(over_now - over_before)

    def close(self) -> None:
        _M["pool_size"].dec(self.pool_size)
        _M["pool_in_use"].dec(self.in_use)
        _M["pool_overflow"].dec(max(0, self.in_use - self.pool_size))
        self.in_use = 0
