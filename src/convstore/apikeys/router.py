"""``/api/v1/api-keys``: the signed-in user's API keys.

Managing keys needs a signed-in session (an access token): a request signed with an API key is
refused with 403, so a leaked key cannot mint more keys or revoke its owner's others.
"""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Response, status

from convstore.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from convstore.apikeys.service import api_key as api_key_service
from convstore.apikeys.service import derived_secret
from convstore.http.deps import (
    API_PREFIX,
    AuthDep,
    Cursor,
    IdempotencyDep,
    Limit,
    NoStore,
    ReadConn,
    SessionUser,
    SettingsDep,
    WriteConn,
)
from convstore.http.errors import CONFLICT_RESPONSES, ERROR_RESPONSES
from convstore.http.idempotency import Replay, replay_headers
from convstore.http.routing import ApiRoute
from convstore.kit.pagination import Page
from convstore.kit.types import uuid7

router = APIRouter(
    prefix="/api-keys", tags=["api-keys"], responses=ERROR_RESPONSES, route_class=ApiRoute
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    summary="Create an API key",
    responses=CONFLICT_RESPONSES,
    dependencies=[NoStore],
)
async def create_api_key(
    body: ApiKeyCreate,
    user: SessionUser,
    conn: WriteConn,
    idem: IdempotencyDep,
    auth: AuthDep,
    settings: SettingsDep,
    response: Response,
) -> ApiKeyCreated | Response:
    """A new key for a program; the answer is the only time the key is shown.

    With ``Idempotency-Key``, a retry gets the same key back: it is derived from the server
    secret and the key's id rather than stored (only its hash ever is)."""
    try:
        await idem.claim(conn, user.id, body)
    except Replay as replay:
        return _replayed(replay, auth.secret, user.id)
    key_id = uuid7()
    secret = derived_secret(auth.secret, user.id, key_id) if idem.key is not None else None
    created = await api_key_service.create(
        conn,
        user.id,
        body,
        max_keys=settings.api_keys_per_user,
        key_id=key_id,
        secret=secret,
    )
    response.headers["Location"] = location = f"{API_PREFIX}/api-keys/{created.id}"
    await idem.record(status.HTTP_201_CREATED, created.model_copy(update={"key": ""}), location)
    return created


def _replayed(replay: Replay, server_secret: bytes, user_id: uuid.UUID) -> Response:
    """The first answer again, with the key it showed (stored without it)."""
    body = json.loads(replay.body)  # our own stored JSON, not client input
    body["key"] = derived_secret(server_secret, user_id, uuid.UUID(body["id"]))
    return Response(
        json.dumps(body),
        status_code=replay.status_code,
        media_type="application/json",
        headers={**replay_headers(replay), "Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get("", summary="List API keys")
async def list_api_keys(
    user: SessionUser, conn: ReadConn, limit: Limit = 20, cursor: Cursor = None
) -> Page[ApiKeyRead]:
    """Your keys, oldest first, with when each was last used; never the keys themselves."""
    return await api_key_service.list(conn, user.id, limit=limit, cursor=cursor)


@router.get("/{key_id}", summary="Get an API key")
async def get_api_key(key_id: uuid.UUID, user: SessionUser, conn: ReadConn) -> ApiKeyRead:
    """One of your keys, with when it was last used; never the key itself."""
    return await api_key_service.get(conn, user.id, key_id)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke an API key")
async def revoke_api_key(key_id: uuid.UUID, user: SessionUser, conn: WriteConn) -> None:
    """Delete the key: the next request made with it is refused with 401."""
    await api_key_service.revoke(conn, user.id, key_id)
