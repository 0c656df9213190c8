"""Traces (the ``otel`` extra): OpenTelemetry's official instrumentations of FastAPI (a server
span per request), SQLAlchemy (a span per statement) and httpx (the model provider's calls and
the JWKS fetches), exported over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT``.

The exporter, the sampler and the resource read OpenTelemetry's standard ``OTEL_*`` variables;
the service is named ``convstore`` unless ``OTEL_SERVICE_NAME`` says otherwise.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from convstore.config import Settings
from convstore.extras import MissingExtra

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

MODULES = (
    "opentelemetry.sdk",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.instrumentation.fastapi",
    "opentelemetry.instrumentation.sqlalchemy",
    "opentelemetry.instrumentation.httpx",
)


def installed() -> bool:
    """Whether the otel extra is installed."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in MODULES)
    except ModuleNotFoundError:  # a parent package is missing
        return False


def wanted(settings: Settings) -> bool:
    """``CONVSTORE_OTEL_ENABLED``, or unset: the extra installed and an OTLP endpoint set.

    Raises:
        MissingExtra: tracing is turned on and the otel extra is missing.
    """
    if settings.otel_enabled is False:
        return False
    if settings.otel_enabled and not installed():
        raise MissingExtra("tracing (CONVSTORE_OTEL_ENABLED)", "otel")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    return bool(settings.otel_enabled) or (bool(endpoint) and installed())


class Tracing:
    """The instrumentation of one application: its server spans from the start, its engine's
    statement spans while the engine is open (:meth:`engine_opened`, :meth:`engine_closed`)."""

    def __init__(self, app: FastAPI, provider: TracerProvider | None = None) -> None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        self.owned = provider is None
        self.provider = provider or _exporting_provider()
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=self.provider, excluded_urls="/healthz,/readyz,/metrics"
        )
        self._httpx = HTTPXClientInstrumentor()
        self._httpx.instrument(tracer_provider=self.provider)
        self._sqlalchemy = SQLAlchemyInstrumentor()

    def engine_opened(self, engine: AsyncEngine) -> None:
        # The instrumentation declares SQLAlchemy < 2.1 and would refuse convstore's 2.1: the
        # engine events it listens to are unchanged in 2.1 (tests/ops/test_tracing.py checks
        # the statement spans), so its version check is skipped.
        self._sqlalchemy.instrument(
            engine=engine.sync_engine, tracer_provider=self.provider, skip_dep_check=True
        )

    def engine_closed(self) -> None:
        """Stop tracing the engine and the provider calls; flush what is left to export."""
        self._sqlalchemy.uninstrument()
        self._httpx.uninstrument()
        if self.owned:
            self.provider.shutdown()


def _exporting_provider() -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "convstore"}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
