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
    responses={503: {"model": Problem, "description": "The database is unreachable."}},
)
async def readyz(store: StoreDep) -> Health:
    """The database answers (503 otherwise)."""
    if not await store.ping():
        raise DatabaseUnavailable("the database is not reachable")
    return Health(status="ready")
