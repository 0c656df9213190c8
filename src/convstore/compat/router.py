"""``/v1/conversations``: the OpenAI Conversations API (``client.conversations``), plus the list
of your conversations that OpenAI's API lacks. Signed in as anywhere else (an API key as the
client's ``api_key``, or an access token); another user's conversation or item is a 404, like
a missing one. Wire format and choices: docs/api.md, "OpenAI-compatible API"."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from convstore.compat.errors import OpenAIError
from convstore.compat.schemas import (
    INCLUDABLE,
    Conversation,
    ConversationDeleted,
    ConversationList,
    ItemList,
    OpenAIConversationCreate,
    OpenAIConversationUpdate,
    OpenAIItemsCreate,
    conversation,
    conversation_list,
    item,
    item_list,
    parse_conversation_id,
    wire_id,
)
from convstore.conversations.schemas import ConversationCreate, ConversationUpdate
from convstore.conversations.service import conversation as conversation_service
from convstore.errors import InvalidInput, NotFound
from convstore.http.deps import (
    AppendConn,
    CurrentUser,
    IdempotencyDep,
    ReadConn,
    SettingsDep,
    WriteConn,
)
from convstore.http.routing import ApiRoute
from convstore.items.schemas import ItemPage
from convstore.items.service import check_items
from convstore.items.service import item as item_service
from convstore.kit.pagination import MAX_PAGE_SIZE
from convstore.kit.validation import parse


def _error(description: str) -> dict[str, Any]:
    return {"model": OpenAIError, "description": description}


OPENAI_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Invalid parameters: `error.param` names the first one."),
    401: _error("No valid API key or access token."),
    404: _error("No such conversation or item among yours."),
    409: _error(
        "The item id is taken in this conversation (`x-should-retry: false`), or a request "
        "with the same `Idempotency-Key` is still running (`x-should-retry: true`)."
    ),
    429: _error("Too many requests: wait `retry-after` seconds."),
    "default": _error("The database is unavailable (503) or another server error."),
}

router = APIRouter(
    prefix="/v1/conversations",
    tags=["OpenAI-compatible"],
    responses=OPENAI_ERRORS,
    route_class=ApiRoute,
)

ConversationId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="A `conv_…` id (or the conversation's convstore id).",
    ),
]
ItemId = Annotated[str, Path(min_length=1, max_length=255, description="An item id.")]
Include = Annotated[
    list[INCLUDABLE] | None,
    Query(
        alias="include[]",
        description="Accepted for compatibility: every item comes back as it was stored.",
    ),
]
IncludeRepeated = Annotated[
    list[INCLUDABLE] | None, Query(alias="include", include_in_schema=False)
]
ListLimit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="1–100.")]
Order = Annotated[
    Literal["asc", "desc"], Query(description="`asc`: oldest first; `desc`: newest first.")
]


@router.get("", summary="List your conversations")
async def list_conversations(
    user: CurrentUser,
    conn: ReadConn,
    after: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: ListLimit = 20,
    order: Order = "desc",
) -> ConversationList:
    """Your live conversations by creation, newest first by default; page with `after` =
    the previous page's `last_id`. OpenAI's API has no such call: with the `openai` client,
    `client.get("/conversations", cast_to=object)`."""
    anchor = None
    if after is not None:
        try:
            anchor = parse_conversation_id(after)
        except NotFound:
            raise InvalidInput("is not one of your conversations", field="after") from None
    reads, has_more = await conversation_service.list_created(
        conn, user.id, after=anchor, limit=limit, ascending=order == "asc"
    )
    return conversation_list(reads, has_more)


@router.post("", summary="Create a conversation")
async def create_conversation(
    body: OpenAIConversationCreate,
    user: CurrentUser,
    conn: WriteConn,
    idem: IdempotencyDep,
    settings: SettingsDep,
) -> Conversation:
    """A conversation with optional `metadata` and first `items` (all stored or none)."""
    checked = check_items(body.items or [], settings.limits)
    data = parse(ConversationCreate, {"metadata": dict(body.metadata or {})})
    await idem.claim(conn, user.id, body)
    created = await conversation_service.create(conn, user.id, data, settings.limits)
    if checked:
        await item_service.add(conn, user.id, created.id, checked)
        created = await conversation_service.get(conn, user.id, created.id)
    result = conversation(created)
    await idem.record(200, result, None)
    return result


@router.get("/{conversation_id}", summary="Retrieve a conversation")
async def retrieve_conversation(
    conversation_id: ConversationId, user: CurrentUser, conn: ReadConn
) -> Conversation:
    """One of your live conversations."""
    found = await conversation_service.get(conn, user.id, parse_conversation_id(conversation_id))
    return conversation(found)


@router.post("/{conversation_id}", summary="Update a conversation's metadata")
async def update_conversation(
    conversation_id: ConversationId,
    body: OpenAIConversationUpdate,
    user: CurrentUser,
    conn: WriteConn,
    settings: SettingsDep,
) -> Conversation:
    """Replace the whole metadata map (`null` clears it)."""
    changes = parse(ConversationUpdate, {"metadata": dict(body.metadata or {})})
    updated = await conversation_service.update(
        conn, user.id, parse_conversation_id(conversation_id), changes, settings.limits
    )
    return conversation(updated)


@router.delete("/{conversation_id}", summary="Delete a conversation")
async def delete_conversation(
    conversation_id: ConversationId, user: CurrentUser, conn: WriteConn
) -> ConversationDeleted:
    """Soft delete, as everywhere in convstore: `POST /api/v1/conversations/{id}/restore`
    brings it back with its items until the retention purge."""
    uid = parse_conversation_id(conversation_id)
    await conversation_service.delete(conn, user.id, uid)
    return ConversationDeleted.model_construct(
        id=wire_id(uid), object="conversation.deleted", deleted=True
    )


@router.post("/{conversation_id}/items", summary="Add items")
async def create_items(
    conversation_id: ConversationId,
    body: OpenAIItemsCreate,
    user: CurrentUser,
    conn: AppendConn,
    idem: IdempotencyDep,
    settings: SettingsDep,
    include: Include = None,
    include_repeated: IncludeRepeated = None,
) -> ItemList:
    """Append items in order, all or none. An item without `id` gets one; an `id` already
    among the conversation's items is a 409."""
    uid = parse_conversation_id(conversation_id)
    checked = check_items(body.items, settings.limits)
    await idem.claim(conn, user.id, body)
    added = await item_service.add(conn, user.id, uid, checked)
    result = item_list(ItemPage(items=added, has_more=False))
    await idem.record(200, result, None)
    return result


@router.get("/{conversation_id}/items", summary="List items")
async def list_items(
    conversation_id: ConversationId,
    user: CurrentUser,
    conn: ReadConn,
    after: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    limit: ListLimit = 20,
    order: Order = "desc",
    include: Include = None,
    include_repeated: IncludeRepeated = None,
) -> ItemList:
    """Items newest first by default (`order=asc`: conversation order), strictly after item
    `after` in that order; native messages read as the items they amount to."""
    page = await item_service.page(
        conn, user.id, parse_conversation_id(conversation_id), after=after, limit=limit, order=order
    )
    return item_list(page)


@router.get("/{conversation_id}/items/{item_id}", summary="Retrieve an item")
async def retrieve_item(
    conversation_id: ConversationId,
    item_id: ItemId,
    user: CurrentUser,
    conn: ReadConn,
    include: Include = None,
    include_repeated: IncludeRepeated = None,
) -> dict[str, Any]:
    """One item, as stored (with `id`, and `status` where OpenAI's types require one)."""
    found = await item_service.get(conn, user.id, parse_conversation_id(conversation_id), item_id)
    return item(found)


@router.delete("/{conversation_id}/items/{item_id}", summary="Delete an item")
async def delete_item(
    conversation_id: ConversationId, item_id: ItemId, user: CurrentUser, conn: WriteConn
) -> Conversation:
    """Remove the item for good (an item of a native message goes with that message);
    answers the conversation, as OpenAI's API does."""
    uid = parse_conversation_id(conversation_id)
    await item_service.delete(conn, user.id, uid, item_id)
    return conversation(await conversation_service.get(conn, user.id, uid))
