"""``/api/v1/conversations/{id}/items``: a conversation read and written as items (what agents
produce, in the OpenAI Responses item model), in one order with its messages. Another user's
conversation or item is a 404, exactly like a missing one."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import Field

from convstore.http.deps import (
    API_PREFIX,
    AppendConn,
    CurrentUser,
    IdempotencyDep,
    ReadConn,
    SettingsDep,
    WriteConn,
)
from convstore.http.errors import CONFLICT_RESPONSES, ERROR_RESPONSES
from convstore.http.routing import ApiRoute
from convstore.items.schemas import MAX_ITEMS_PER_CALL, ItemPage, ItemRead
from convstore.items.service import check_items
from convstore.items.service import item as item_service
from convstore.kit.pagination import MAX_PAGE_SIZE
from convstore.kit.schemas import ReadSchema, Schema

router = APIRouter(
    prefix="/conversations/{conversation_id}/items",
    tags=["items"],
    responses=ERROR_RESPONSES,
    route_class=ApiRoute,
)
ItemId = Annotated[str, Path(min_length=1, max_length=255, description="An item id.")]


class ItemsCreate(Schema):
    items: list[dict[str, Any]] = Field(
        max_length=MAX_ITEMS_PER_CALL,
        description="Items to append in order (at most 1,000; all stored or none): "
        "`message`, `function_call`, `function_call_output`, `reasoning` or any typed item.",
    )


class ItemList(ReadSchema):
    items: list[ItemRead]
    has_more: bool = Field(
        description="More items follow in this order: pass `last_id` as `after`."
    )
    first_id: str | None
    last_id: str | None


def _list(page: ItemPage) -> ItemList:
    return ItemList.model_construct(
        items=page.items, has_more=page.has_more, first_id=page.first_id, last_id=page.last_id
    )


@router.get("", summary="List items")
async def list_items(
    conversation_id: uuid.UUID,
    user: CurrentUser,
    conn: ReadConn,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    after: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    order: Literal["asc", "desc"] = "asc",
) -> ItemList:
    """Items in conversation order (`asc`, oldest first) or newest first (`desc`), strictly
    after item `after` in that order. Native messages read as the items they amount to."""
    page = await item_service.page(
        conn, user.id, conversation_id, after=after, limit=limit, order=order
    )
    return _list(page)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Append items",
    responses=CONFLICT_RESPONSES,
)
async def add_items(
    conversation_id: uuid.UUID,
    body: ItemsCreate,
    user: CurrentUser,
    conn: AppendConn,
    idem: IdempotencyDep,
    settings: SettingsDep,
    response: Response,
) -> ItemList:
    """Append items as given (an item without an `id` gets one); an id already among the
    conversation's items is a 409."""
    checked = check_items(body.items, settings.limits)
    await idem.claim(conn, user.id, body)
    added = await item_service.add(conn, user.id, conversation_id, checked)
    result = _list(ItemPage(items=added, has_more=False))
    response.headers["Location"] = location = f"{API_PREFIX}/conversations/{conversation_id}/items"
    await idem.record(status.HTTP_201_CREATED, result, location)
    return result


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, summary="Remove every item")
async def clear_items(conversation_id: uuid.UUID, user: CurrentUser, conn: WriteConn) -> None:
    """Remove every item and message of the conversation for good; the conversation stays."""
    await item_service.clear(conn, user.id, conversation_id)


@router.get("/{item_id}", summary="Get an item")
async def get_item(
    conversation_id: uuid.UUID, item_id: ItemId, user: CurrentUser, conn: ReadConn
) -> ItemRead:
    """One item of one of your conversations."""
    return await item_service.get(conn, user.id, conversation_id, item_id)


@router.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove an item")
async def delete_item(
    conversation_id: uuid.UUID, item_id: ItemId, user: CurrentUser, conn: WriteConn
) -> None:
    """Remove one item for good (an item of a native message goes with that message)."""
    await item_service.delete(conn, user.id, conversation_id, item_id)
