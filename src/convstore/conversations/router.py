"""``/api/v1/conversations`` and their messages. Another user's conversation or message is a
404, exactly like a missing one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import AfterValidator

from convstore.conversations.schemas import (
    MAX_SEQ,
    ConversationCreate,
    ConversationRead,
    ConversationUpdate,
    MessageCreate,
    MessageRead,
    MessageUpdate,
)
from convstore.conversations.service import conversation as conversation_service
from convstore.conversations.service import message as message_service
from convstore.http.deps import (
    API_PREFIX,
    AppendConn,
    CurrentUser,
    Cursor,
    IdempotencyDep,
    Limit,
    ReadConn,
    SettingsDep,
    WriteConn,
)
from convstore.http.errors import CONFLICT_RESPONSES, ERROR_RESPONSES
from convstore.http.routing import ApiRoute
from convstore.kit.pagination import Page
from convstore.kit.schemas import check_identifier

router = APIRouter(
    prefix="/conversations",
    tags=["conversations"],
    responses=ERROR_RESPONSES,
    route_class=ApiRoute,
)
Seq = Annotated[int | None, Query(ge=0, le=MAX_SEQ, description="A message seq.")]


def _conversation_url(conversation_id: uuid.UUID) -> str:
    return f"{API_PREFIX}/conversations/{conversation_id}"


def _key_or_none(key: str | None) -> str | None:
    """A ``key`` query parameter checked as a stored key is (no control characters): one
    convstore could never have stored is a 422 naming it, not a query the database refuses."""
    return None if key is None else check_identifier(key)


@router.get("", summary="List conversations")
async def list_conversations(
    user: CurrentUser,
    conn: ReadConn,
    limit: Limit = 20,
    cursor: Cursor = None,
    include_deleted: bool = False,
    key: Annotated[
        str | None,
        Query(
            min_length=1, max_length=255, description="Only your live conversation with this key."
        ),
        AfterValidator(_key_or_none),
    ] = None,
) -> Page[ConversationRead]:
    """Your conversations, most recent activity first; with `key`, the one live conversation
    you gave that key (an empty page when none has it)."""
    if key is not None:
        found = await conversation_service.find_by_key(conn, user.id, key)
        return Page[ConversationRead](items=[found] if found else [], has_more=False)
    return await conversation_service.list(
        conn, user.id, limit=limit, cursor=cursor, include_deleted=include_deleted
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Start a conversation",
    responses=CONFLICT_RESPONSES,
)
async def create_conversation(
    body: ConversationCreate,
    user: CurrentUser,
    conn: WriteConn,
    idem: IdempotencyDep,
    settings: SettingsDep,
    response: Response,
) -> ConversationRead:
    """Start a conversation; without a title, the first user message provides one."""
    await idem.claim(conn, user.id, body)
    conv = await conversation_service.create(conn, user.id, body, settings.limits)
    response.headers["Location"] = location = _conversation_url(conv.id)
    await idem.record(status.HTTP_201_CREATED, conv, location)
    return conv


@router.get("/{conversation_id}", summary="Get a conversation")
async def get_conversation(
    conversation_id: uuid.UUID,
    user: CurrentUser,
    conn: ReadConn,
    include_deleted: bool = False,
) -> ConversationRead:
    """One of your conversations (soft-deleted ones only with `include_deleted`)."""
    return await conversation_service.get(
        conn, user.id, conversation_id, include_deleted=include_deleted
    )


@router.patch("/{conversation_id}", summary="Rename or re-tag a conversation")
async def update_conversation(
    conversation_id: uuid.UUID,
    body: ConversationUpdate,
    user: CurrentUser,
    conn: WriteConn,
    settings: SettingsDep,
) -> ConversationRead:
    """Change the title (null clears it) and/or replace the metadata."""
    return await conversation_service.update(conn, user.id, conversation_id, body, settings.limits)


@router.delete(
    "/{conversation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a conversation (restorable)",
)
async def delete_conversation(
    conversation_id: uuid.UUID, user: CurrentUser, conn: WriteConn
) -> None:
    """Soft delete: the conversation and its messages disappear until restored."""
    await conversation_service.delete(conn, user.id, conversation_id)


@router.post("/{conversation_id}/restore", summary="Restore a deleted conversation")
async def restore_conversation(
    conversation_id: uuid.UUID, user: CurrentUser, conn: WriteConn
) -> ConversationRead:
    """Bring back a soft-deleted conversation with all its messages."""
    return await conversation_service.restore(conn, user.id, conversation_id)


@router.get("/{conversation_id}/messages", summary="List messages")
async def list_messages(
    conversation_id: uuid.UUID,
    user: CurrentUser,
    conn: ReadConn,
    limit: Limit = 20,
    cursor: Cursor = None,
    after: Seq = None,
    before: Seq = None,
) -> Page[MessageRead]:
    """A page of messages, oldest first within the page.

    Without a position: the newest `limit`, and `next_cursor` walks back to older ones.
    `before=s`: the messages just below seq s; `after=s`: just above it (and onwards).
    """
    return await message_service.page(
        conn, user.id, conversation_id, limit=limit, after=after, before=before, cursor=cursor
    )


@router.post(
    "/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    summary="Append a message",
    responses=CONFLICT_RESPONSES,
)
async def append_message(
    conversation_id: uuid.UUID,
    body: MessageCreate,
    user: CurrentUser,
    conn: AppendConn,
    idem: IdempotencyDep,
    settings: SettingsDep,
    response: Response,
) -> MessageRead:
    """Store a message as the next one of the conversation (it gets the next `seq`)."""
    await idem.claim(conn, user.id, body)
    (stored,) = await message_service.append_many(
        conn, user.id, conversation_id, [body], settings.limits, prefixed=False
    )
    response.headers["Location"] = location = (
        f"{_conversation_url(conversation_id)}/messages/{stored.id}"
    )
    await idem.record(status.HTTP_201_CREATED, stored, location)
    return stored


@router.get("/{conversation_id}/messages/{message_id}", summary="Get a message")
async def get_message(
    conversation_id: uuid.UUID, message_id: uuid.UUID, user: CurrentUser, conn: ReadConn
) -> MessageRead:
    """One message of one of your conversations."""
    return await message_service.get(conn, user.id, conversation_id, message_id)


@router.patch("/{conversation_id}/messages/{message_id}", summary="Edit a message")
async def update_message(
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    body: MessageUpdate,
    user: CurrentUser,
    conn: WriteConn,
    settings: SettingsDep,
) -> MessageRead:
    """Change content, status, tool calls/results, metadata or usage (the role never changes)."""
    return await message_service.update(
        conn, user.id, conversation_id, message_id, body, settings.limits
    )


@router.delete(
    "/{conversation_id}/messages/{message_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a message",
)
async def delete_message(
    conversation_id: uuid.UUID, message_id: uuid.UUID, user: CurrentUser, conn: WriteConn
) -> None:
    """Soft delete one message; the others keep their seq."""
    await message_service.delete(conn, user.id, conversation_id, message_id)
