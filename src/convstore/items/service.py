"""The rules for items (see ``items/schemas.py``). Items are rows of ``messages`` taking seqs
from the same counter as messages, so both views keep one order. Services never commit: the
caller owns the transaction."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.config import Limits
from convstore.conversations.repository import MessageRepository
from convstore.conversations.service import title_from_message
from convstore.errors import InvalidInput, NotFound
from convstore.items.schemas import MAX_ITEMS_PER_CALL, CheckedItem, ItemPage, ItemRead, check_item
from convstore.items.views import derived_row_id, new_item_id, row_items
from convstore.kit import metrics
from convstore.kit.types import utc_now, uuid7

Order = Literal["asc", "desc"]


def _conversation_not_found() -> NotFound:
    return NotFound("conversation not found")


def _item_not_found() -> NotFound:
    return NotFound("item not found")


def check_items(
    items: Sequence[Any], limits: Limits, field: str = "items", *, keep_ids: bool = True
) -> list[CheckedItem]:
    """Validate a batch to add: at most ``MAX_ITEMS_PER_CALL``, each a valid item, no id twice.
    Without ``keep_ids`` every item is stored under an id convstore assigns (the item itself
    keeps its ``id`` key as given), for producers whose ids repeat."""
    if len(items) > MAX_ITEMS_PER_CALL:
        raise InvalidInput(f"at most {MAX_ITEMS_PER_CALL} items per call", field=field)
    checked = [
        check_item(value, f"{field}.{i}", limits.max_item_bytes) for i, value in enumerate(items)
    ]
    if not keep_ids:
        return [dataclasses.replace(item, id=None) for item in checked]
    seen: dict[str, int] = {}
    for i, item in enumerate(checked):
        if item.id is not None:
            if item.id in seen:
                raise InvalidInput(
                    f"repeats the id of {field}.{seen[item.id]}", field=f"{field}.{i}.id"
                )
            seen[item.id] = i
    return checked


def _row(item: CheckedItem, conversation_id: uuid.UUID, now: Any) -> dict[str, Any]:
    row_id = uuid7()
    return {
        "id": row_id,
        "conversation_id": conversation_id,
        "role": item.role,
        "content": item.content,
        "status": item.status,
        "tool_calls": item.tool_calls,
        "tool_results": None,
        "tool_call_id": None,
        "attributes": {},
        "parent_id": None,
        "usage": None,
        "item_type": item.type,
        "item_id": new_item_id(item.type, item.id, row_id),
        "item": item.item,
        "created_at": now,
        "updated_at": now,
    }


class ItemService:
    async def add(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        items: Sequence[CheckedItem],
    ) -> list[ItemRead]:
        """Append checked items in order, all or none; an id already among the conversation's
        items is a Conflict (the unique index decides, also between concurrent writers)."""
        if not items:
            repo = MessageRepository(conn, user_id)
            if await repo.conversations.get(conversation_id) is None:
                raise _conversation_not_found()
            return []
        now = utc_now()
        rows = [_row(item, conversation_id, now) for item in items]
        first_user = next((r for r in rows if r["role"] == "user" and r["content"]), None)
        title = title_from_message(first_user["content"]) if first_user else None
        repo = MessageRepository(conn, user_id)
        if await repo.append(conversation_id, rows, now=now, title=title) is None:
            raise _conversation_not_found()
        metrics.messages_appended(items)
        return [read for row in rows for read in row_items(row)]

    async def _locate(
        self, repo: MessageRepository, conversation_id: uuid.UUID, item_id: str
    ) -> tuple[Any, int] | None:
        """The visible row holding item ``item_id`` and the item's index among the row's."""
        row = await repo.find_item(conversation_id, item_id)
        if row is None and (row_id := derived_row_id(item_id)) is not None:
            row = await repo.get(conversation_id, row_id)
            if row is not None and row["item_type"] is not None:
                row = None
        if row is None:
            return None
        ids = [read.id for read in row_items(row)]
        return (row, ids.index(item_id)) if item_id in ids else None

    async def page(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        *,
        after: str | None,
        limit: int,
        order: Order,
    ) -> ItemPage:
        """Up to ``limit`` items in ``order`` (by seq, then place in the row), strictly after
        item ``after`` in that order; ``has_more`` is exact. An ``after`` that is not an item of
        the conversation is invalid input naming ``after``."""
        repo = MessageRepository(conn, user_id)
        ascending = order == "asc"
        seq: int | None = None
        skip = 0
        if after is not None:
            found = await self._locate(repo, conversation_id, after)
            if found is None:
                if await repo.conversations.get(conversation_id) is None:
                    raise _conversation_not_found()
                raise InvalidInput("is not an item of this conversation", field="after")
            row, index = found
            seq = row["seq"]
            count = len(row_items(row))
            skip = index + 1 if ascending else count - index
        # Every row holds at least one item: limit + 1 rows past the anchor's are enough.
        rows = await repo.rows(conversation_id, ascending=ascending, seq=seq, limit=limit + 2)
        if not rows and await repo.conversations.get(conversation_id) is None:
            raise _conversation_not_found()
        reads: list[ItemRead] = []
        for row in rows:
            items = row_items(row)
            reads.extend(items if ascending else reversed(items))
        reads = reads[skip:]
        return ItemPage(items=reads[:limit], has_more=len(reads) > limit)

    async def latest(
        self, conn: AsyncConnection, user_id: uuid.UUID, conversation_id: uuid.UUID, count: int
    ) -> list[ItemRead]:
        """The newest ``count`` items, oldest first (what an agent's next turn replays)."""
        if count == 0:
            return []
        page = await self.page(
            conn, user_id, conversation_id, after=None, limit=count, order="desc"
        )
        return list(reversed(page.items))

    async def get(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        item_id: str,
    ) -> ItemRead:
        found = await self._locate(MessageRepository(conn, user_id), conversation_id, item_id)
        if found is None:
            raise _item_not_found()
        row, index = found
        return row_items(row)[index]

    async def delete(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        item_id: str,
    ) -> None:
        """Remove one item for good. An item derived from a native message goes with that
        message (with every item it reads as): a message is the unit stored."""
        repo = MessageRepository(conn, user_id)
        if not await repo.conversations.touch(conversation_id, utc_now()):
            raise _item_not_found()
        found = await self._locate(repo, conversation_id, item_id)
        if found is None:
            raise _item_not_found()
        await repo.remove(conversation_id, [found[0]["id"]])

    async def pop(
        self, conn: AsyncConnection, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> ItemRead | None:
        """Remove and return the newest item (None when there is none). Concurrent pops queue
        on the conversation's row lock, so each returns a different item."""
        repo = MessageRepository(conn, user_id)
        if not await repo.conversations.touch(conversation_id, utc_now()):
            raise _conversation_not_found()
        rows = await repo.rows(conversation_id, ascending=False, seq=None, limit=1)
        if not rows:
            return None
        await repo.remove(conversation_id, [rows[0]["id"]])
        return row_items(rows[0])[-1]

    async def clear(
        self, conn: AsyncConnection, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> int:
        """Remove every item (and message) of the conversation for good; how many rows."""
        repo = MessageRepository(conn, user_id)
        if not await repo.conversations.touch(conversation_id, utc_now()):
            raise _conversation_not_found()
        return await repo.remove_all(conversation_id)


item = ItemService()
