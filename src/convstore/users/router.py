"""``/api/v1/admin/users``: what an ``admin`` may do to other accounts over the API — list
them, read one, disable and enable them. Nothing else: an admin reads no one else's
conversations, messages or tasks.

To anyone who is not an admin these routes answer exactly as an unknown path does (404), so a
signed-in user learns neither that they exist nor which user ids do. Disabling and enabling
write one audit line each (logger ``convstore.audit``) once the change is committed.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from convstore.http.deps import AdminUser, Cursor, Limit, StoreDep
from convstore.http.errors import CONFLICT_RESPONSES, ERROR_RESPONSES, problem_response
from convstore.http.routing import ApiRoute
from convstore.kit.pagination import Page
from convstore.kit.validation import parse
from convstore.users.schemas import UserFilter, UserRead
from convstore.users.service import user as user_service

audit = logging.getLogger("convstore.audit")

router = APIRouter(
    prefix="/admin/users",
    tags=["admin"],
    responses={**ERROR_RESPONSES, 403: problem_response(403, "Signed in with an API key")},
    route_class=ApiRoute,
)


@router.get("", summary="List users (admin)")
async def list_users(
    admin: AdminUser,
    store: StoreDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    email_prefix: Annotated[
        str | None, Query(max_length=320, description="Only emails starting with this.")
    ] = None,
    is_active: Annotated[bool | None, Query(description="Only active or disabled users.")] = None,
) -> Page[UserRead]:
    """Every account, oldest first, optionally filtered; never a password hash."""
    filters = parse(UserFilter, {"email_prefix": email_prefix, "is_active": is_active})
    async with store.reading(admin.id) as conn:
        return await user_service.page(conn, filters, limit=limit, cursor=cursor)


@router.get("/{user_id}", summary="Get a user (admin)")
async def get_user(user_id: uuid.UUID, admin: AdminUser, store: StoreDep) -> UserRead:
    """One account."""
    async with store.reading(admin.id) as conn:
        return await user_service.get(conn, user_id)


@router.post("/{user_id}/disable", summary="Disable a user (admin)", responses=CONFLICT_RESPONSES)
async def disable_user(user_id: uuid.UUID, admin: AdminUser, store: StoreDep) -> UserRead:
    """Refuse the account's access tokens, refresh tokens and API keys from their next request
    and its sign-ins; its sessions are ended for good. Your own account is a 409."""
    return await _set_active(store, admin, user_id, active=False)


@router.post("/{user_id}/enable", summary="Enable a user (admin)")
async def enable_user(user_id: uuid.UUID, admin: AdminUser, store: StoreDep) -> UserRead:
    """Let the account sign in again (its ended sessions stay ended; its API keys work again)."""
    return await _set_active(store, admin, user_id, active=True)


async def _set_active(
    store: StoreDep, admin: AdminUser, user_id: uuid.UUID, *, active: bool
) -> UserRead:
    # The transaction acts for the account it changes (its refresh tokens are under row-level
    # security), and is committed before the audit line is written.
    async with store.writing(user_id) as conn:
        changed = await user_service.set_active(conn, user_id, active, actor_id=admin.id)
    audit.info(
        "admin %s %s user %s",
        admin.id,
        "enabled" if active else "disabled",
        user_id,
        extra={
            "audit": "user.enable" if active else "user.disable",
            "admin_id": str(admin.id),
            "target_user_id": str(user_id),
        },
    )
    return changed
