"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from convstore.errors import DatabaseUnavailable
from convstore.http.deps import StoreDep
from convstore.http.errors import Problem
from convstore.http.routing import ApiRoute

router = APIRouter(tags=["health"], route_class=ApiRoute)


class Health(BaseModel):
    status: str


@router.get("/healthz", summary="Liveness")
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness",
    responses={503: {"model": Problem, "description": "The database cannot take a write now."}},
)
async def readyz(store: StoreDep) -> Health:
    """The database can take a write now (503 otherwise): reachable, not read-only, and on
    SQLite its write lock free within ``CONVSTORE_READINESS_TIMEOUT_SECONDS``."""
    if not await store.accepts_writes(store.settings.readiness_timeout_seconds):
        raise DatabaseUnavailable("the database cannot take a write")
    return Health(status="ready")
