"""Traces: a request gives a server span (FastAPI's instrumentation) with the SQL statements it
ran as child spans (SQLAlchemy's), caught by the SDK's in-memory exporter."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from convstore.config import Settings
from convstore.http import tracing
from tests.http.helpers import API
from tests.support.api import api_settings, client_for, register, running_app


async def test_a_request_has_a_server_span_with_database_children(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = api_settings(f"sqlite:///{tmp_path / 'traces.db'}", otel_enabled=True)
    async with running_app(settings, tracer_provider=provider) as app, client_for(app) as client:
        alice = await register(client)
        exporter.clear()
        listed = await client.get(f"{API}/conversations", headers=alice.headers)
        assert listed.status_code == 200
    spans = exporter.get_finished_spans()
    (server,) = [s for s in spans if s.kind is SpanKind.SERVER]
    assert server.attributes is not None
    assert server.attributes.get("http.route") == f"{API}/conversations"
    children = [
        s for s in spans if s.parent is not None and s.parent.span_id == server.context.span_id
    ]
    database = [s for s in spans if s.attributes and s.attributes.get("db.system") == "sqlite"]
    assert database, [s.name for s in spans]
    assert all(s.context.trace_id == server.context.trace_id for s in database)
    assert children  # the statements hang below the request (directly or via its handler)
    provider.shutdown()


def test_tracing_is_on_with_an_otlp_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert not tracing.wanted(Settings())
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing.wanted(Settings())
    assert not tracing.wanted(Settings(otel_enabled=False))
