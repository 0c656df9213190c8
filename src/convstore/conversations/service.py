"""The rules for conversations and messages. Services never commit: the caller owns the
transaction (see ``convstore.store``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict, Unpack

import orjson
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.config import Limits
from convstore.conversations.repository import ConversationRepository, MessageRepository
from convstore.conversations.schemas import (
    MAX_SEQ,
    ConversationCreate,
    ConversationRead,
    ConversationUpdate,
    MessageCreate,
    MessageRead,
    MessageUpdate,
    ToolCall,
    ToolResult,
)
from convstore.errors import Conflict, InvalidInput, NotFound
from convstore.kit import metrics
from convstore.kit.pagination import (
    Page,
    decode_cursor,
    decode_keyset,
    encode_cursor,
    encode_keyset,
)
from convstore.kit.schemas import trusted
from convstore.kit.types import utc_now, uuid7
from convstore.kit.validation import check_bytes, check_metadata, check_size

TITLE_FROM_MESSAGE_CHARS = 60
"""A conversation without a title takes the first words of its first user message."""
MAX_USAGE_CHARS = 4_096
_MESSAGE_PAGE = Page[MessageRead]
_CONVERSATION_PAGE = Page[ConversationRead]
"""Parametrised once: ``Page[X]`` looks its class up in pydantic's cache on every use."""
_MESSAGE_PAGE_JSON = TypeAdapter(_MESSAGE_PAGE)
MAX_TOOL_RESULTS_CHARS = 1_000_000


class PagePosition(TypedDict):
    """Where a page of messages starts: at most one of ``after``, ``before``, ``cursor``."""

    limit: int
    after: int | None
    before: int | None
    cursor: str | None


def _not_found() -> NotFound:
    return NotFound("conversation not found")


def title_from_message(content: str) -> str:
    """The message's words (whitespace collapsed), cut at a word boundary to 60 characters."""
    # The title needs the first words only: collapse a head of the text, and the whole text
    # only when that head is too short once collapsed (a message of mostly whitespace).
    head = content[: TITLE_FROM_MESSAGE_CHARS * 4]
    words = " ".join(head.split())
    if len(words) <= TITLE_FROM_MESSAGE_CHARS and len(head) < len(content):
        words = " ".join(content.split())
    if len(words) <= TITLE_FROM_MESSAGE_CHARS:
        return words
    cut = words[: TITLE_FROM_MESSAGE_CHARS - 1]
    if " " in cut[TITLE_FROM_MESSAGE_CHARS // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


class ConversationService:
    async def create(
        self, conn: AsyncConnection, user_id: uuid.UUID, data: ConversationCreate, limits: Limits
    ) -> ConversationRead:
        """A new conversation, with its first messages when ``data`` has some: all of it is
        stored in one unit (one statement on PostgreSQL, one hop to SQLite's thread), or
        nothing."""
        check_metadata(data.metadata, limits, "metadata")
        now = utc_now()
        values = _new_conversation(data, now)
        repo = ConversationRepository(conn, user_id)
        if not data.messages:
            return conversation_read(await repo.insert(values))
        rows = message.first_rows(values["id"], data.messages, limits, now)
        first_user = next((m for m in data.messages if m.role == "user"), None)
        if data.title is None and first_user is not None:
            values["title"] = title_from_message(first_user.content)
        values.update(messages_count=len(rows), last_message_at=now)
        row = await repo.insert_with_messages(values, rows)
        metrics.messages_appended(data.messages)
        return conversation_read(row)

    async def get_by_key(
        self, conn: AsyncConnection, user_id: uuid.UUID, key: str
    ) -> ConversationRead:
        """The user's live conversation with this key; NotFound when none has it."""
        found = await self.find_by_key(conn, user_id, key)
        if found is None:
            raise _not_found()
        return found

    async def find_by_key(
        self, conn: AsyncConnection, user_id: uuid.UUID, key: str
    ) -> ConversationRead | None:
        """The user's live conversation with this key, if one has it."""
        row = await ConversationRepository(conn, user_id).get_by_key(key)
        return None if row is None else conversation_read(row)

    async def ensure(
        self, conn: AsyncConnection, user_id: uuid.UUID, data: ConversationCreate, limits: Limits
    ) -> ConversationRead:
        """The user's live conversation with ``data.key``, created from ``data`` when there is
        none (concurrent callers get the same one)."""
        if data.key is None:
            raise InvalidInput("is required", field="key")
        check_metadata(data.metadata, limits, "metadata")
        repo = ConversationRepository(conn, user_id)
        values = _new_conversation(data, utc_now())
        row = await repo.insert_keyed(values) or await repo.get_by_key(data.key)
        if row is None:  # created and deleted by another caller in between
            raise _not_found()
        return conversation_read(row)

    async def get(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        *,
        include_deleted: bool = False,
    ) -> ConversationRead:
        row = await ConversationRepository(conn, user_id).get(
            conversation_id, include_deleted=include_deleted
        )
        if row is None:
            raise _not_found()
        return conversation_read(row)

    async def list(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        *,
        limit: int,
        cursor: str | None,
        include_deleted: bool,
    ) -> Page[ConversationRead]:
        """Most recent activity first (``updated_at``, then id), keyset-paged."""
        scope = f"conversations:{int(include_deleted)}"
        after = decode_keyset(cursor, scope) if cursor is not None else None
        rows = await ConversationRepository(conn, user_id).list_recent(
            limit=limit + 1, after=after, include_deleted=include_deleted
        )
        items = [conversation_read(r) for r in rows[:limit]]
        has_more = len(rows) > limit
        next_cursor = None
        if has_more:
            last = items[-1]
            next_cursor = encode_keyset(scope, last.updated_at, last.id)
        return _CONVERSATION_PAGE.model_construct(
            items=items, next_cursor=next_cursor, has_more=has_more
        )

    async def list_created(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        *,
        after: uuid.UUID | None,
        limit: int,
        ascending: bool,
    ) -> tuple[Sequence[ConversationRead], bool]:
        """Live conversations in creation order, strictly after conversation ``after`` (one of
        the user's, deleted or not: invalid input naming ``after`` otherwise); whether more
        follow."""
        repo = ConversationRepository(conn, user_id)
        if after is not None and await repo.get(after, include_deleted=True) is None:
            raise InvalidInput("is not one of your conversations", field="after")
        rows = await repo.list_created(limit=limit + 1, after=after, ascending=ascending)
        return [conversation_read(r) for r in rows[:limit]], len(rows) > limit

    async def update(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        data: ConversationUpdate,
        limits: Limits,
    ) -> ConversationRead:
        changes = data.model_dump(exclude_unset=True)
        values: dict[str, Any] = {}
        if "title" in changes:
            values["title"] = data.title
        if "metadata" in changes:
            if data.metadata is None:
                raise InvalidInput("must be an object", field="metadata")
            check_metadata(data.metadata, limits, "metadata")
            values["attributes"] = data.metadata
        repo = ConversationRepository(conn, user_id)
        if not values:
            return await self.get(conn, user_id, conversation_id)
        row = await repo.update(conversation_id, {**values, "updated_at": utc_now()})
        if row is None:
            raise _not_found()
        return conversation_read(row)

    async def delete(
        self, conn: AsyncConnection, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> None:
        """Soft delete: the conversation and all its messages disappear from every read."""
        row = await ConversationRepository(conn, user_id).update(
            conversation_id, {"deleted_at": utc_now()}, live=True
        )
        if row is None:
            raise _not_found()

    async def restore(
        self, conn: AsyncConnection, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> ConversationRead:
        """Bring back a soft-deleted conversation with its messages (a live one is returned
        unchanged)."""
        now = utc_now()
        repo = ConversationRepository(conn, user_id)
        row = await repo.update(
            conversation_id, {"deleted_at": None, "updated_at": now}, live=False
        )
        if row is None:
            row = await repo.get(conversation_id)
        if row is None:
            raise _not_found()
        return conversation_read(row)

    async def purge(
        self, conn: AsyncConnection, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> None:
        """Delete for good, deleted or not; the database cascades to the messages."""
        if not await ConversationRepository(conn, user_id).purge(conversation_id):
            raise _not_found()


class MessageService:
    def _check(
        self,
        role: str,
        content: str | None,
        calls: Sequence[ToolCall] | None,
        extra: dict[str, Any],
        limits: Limits,
        prefix: str,
    ) -> None:
        """The configurable limits: content length by role, tool calls, metadata, payloads."""
        max_chars = (
            limits.max_user_message_chars
            if role in ("user", "system")
            else limits.max_assistant_message_chars
        )
        if content is not None and len(content) > max_chars:
            raise InvalidInput(f"longer than {max_chars} characters", field=f"{prefix}content")
        if calls is not None:
            if len(calls) > limits.max_tool_calls:
                raise InvalidInput(
                    f"at most {limits.max_tool_calls} tool calls", field=f"{prefix}tool_calls"
                )
            for i, call in enumerate(calls):
                check_bytes(
                    call.arguments,
                    limits.max_tool_arguments_bytes,
                    f"{prefix}tool_calls.{i}.arguments",
                )
        check_metadata(extra.get("metadata"), limits, f"{prefix}metadata")
        check_size(extra.get("usage"), MAX_USAGE_CHARS, f"{prefix}usage")
        check_size(extra.get("tool_results"), MAX_TOOL_RESULTS_CHARS, f"{prefix}tool_results")

    def _check_item(self, item: MessageCreate, limits: Limits, prefix: str) -> None:
        extra = {
            "metadata": item.metadata,
            "usage": item.usage,
            "tool_results": _dump_list(item.tool_results),
        }
        self._check(item.role, item.content, item.tool_calls, extra, limits, prefix)

    def first_rows(
        self,
        conversation_id: uuid.UUID,
        items: Sequence[MessageCreate],
        limits: Limits,
        now: datetime,
    ) -> list[dict[str, Any]]:
        """The rows of a new conversation's first messages, checked as an append's (fields
        named ``messages.<i>.…``); none may answer a ``parent_id``, as there is none yet."""
        for i, item in enumerate(items):
            prefix = f"messages.{i}."
            if item.parent_id is not None:
                raise InvalidInput(
                    "no such message in this conversation", field=f"{prefix}parent_id"
                )
            self._check_item(item, limits, prefix)
        return [_new_row(item, conversation_id, now) for item in items]

    async def append_many(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        items: Sequence[MessageCreate],
        limits: Limits,
        *,
        prefixed: bool = True,
    ) -> list[MessageRead]:
        """Append ``items`` in order, in the caller's transaction.

        Sequence numbers are taken with one atomic counter update, so concurrent appenders
        never collide and ``messages_count`` stays exact. A deleted or foreign conversation is
        not found; an unknown ``parent_id`` is invalid input.
        """
        if not items:
            return []
        multi = prefixed
        for i, item in enumerate(items):
            self._check_item(item, limits, f"{i}." if multi else "")
        repo = MessageRepository(conn, user_id)
        first_user = next((m for m in items if m.role == "user"), None)
        now = utc_now()
        title = title_from_message(first_user.content) if first_user else None
        rows = [_new_row(item, conversation_id, now) for item in items]
        if await repo.append(conversation_id, rows, now=now, title=title) is None:
            raise await self._refusal(repo, conversation_id, items, multi)
        metrics.messages_appended(items)
        return [message_read(row) for row in rows]

    async def _refusal(
        self,
        repo: MessageRepository,
        conversation_id: uuid.UUID,
        items: Sequence[MessageCreate],
        multi: bool,
    ) -> NotFound | InvalidInput:
        """Why an append stored nothing: the conversation is not found, or a ``parent_id``
        names no visible message of it (the first such field is named)."""
        if await repo.conversations.get(conversation_id) is None:
            return _not_found()
        for i, item in enumerate(items):
            if item.parent_id is not None and not await repo.exists(
                conversation_id, item.parent_id
            ):
                field = f"{i}.parent_id" if multi else "parent_id"
                return InvalidInput("no such message in this conversation", field=field)
        return _not_found()  # the conversation went away and came back meanwhile

    async def page(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        **position: Unpack[PagePosition],
    ) -> Page[MessageRead]:
        """One page of messages, always oldest first within the page.

        With no position, the newest ``limit`` messages; ``next_cursor`` then walks back to
        older ones. ``before=s`` gives the messages just below seq ``s`` (and continues
        backwards); ``after=s`` those just above it (and continues forwards).
        """
        return _page_read(*await self._page_rows(conn, user_id, conversation_id, **position))

    async def page_json(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        **position: Unpack[PagePosition],
    ) -> bytes:
        """:meth:`page` as the API's JSON (the bytes of ``Page[MessageRead]``'s JSON form,
        ``by_alias``), built straight from the rows: the hot read route's response."""
        return page_json(*await self._page_rows(conn, user_id, conversation_id, **position))

    async def _page_rows(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        *,
        limit: int,
        after: int | None,
        before: int | None,
        cursor: str | None,
    ) -> tuple[Sequence[Mapping[str, Any]], str | None, bool]:
        if sum(x is not None for x in (after, before, cursor)) > 1:
            raise InvalidInput("give at most one of after, before and cursor", field="cursor")
        scope = f"messages:{conversation_id}"
        if cursor is not None:
            direction, seq = _decode_message_cursor(cursor, scope)
            after, before = (seq, None) if direction == "after" else (None, seq)
        for name, value in (("after", after), ("before", before)):
            if value is not None and not _is_seq(value):
                raise InvalidInput(f"must be an integer from 0 to {MAX_SEQ} (a seq)", field=name)
        repo = MessageRepository(conn, user_id)
        if after is not None:
            rows = await repo.after(conversation_id, after, limit + 1)
            has_more, rows = len(rows) > limit, rows[:limit]
            key = ("after", rows[-1]["seq"]) if rows else None
        else:
            if before is None:
                rows = await repo.latest(conversation_id, limit + 1)
            else:
                rows = await repo.before(conversation_id, before, limit + 1)
            has_more, rows = len(rows) > limit, rows[-limit:]
            key = ("before", rows[0]["seq"]) if rows else None
        # The page's statement also requires the conversation to be live; only an empty page
        # needs a second look to tell "no messages here" from "no such conversation".
        if not rows and await repo.conversations.get(conversation_id) is None:
            raise _not_found()
        next_cursor = encode_cursor(scope, list(key)) if has_more and key else None
        return rows, next_cursor, has_more

    async def get(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        message_id: uuid.UUID,
    ) -> MessageRead:
        row = await MessageRepository(conn, user_id).get(conversation_id, message_id)
        if row is None:
            raise NotFound("message not found")
        return message_read(row)

    async def update(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        message_id: uuid.UUID,
        data: MessageUpdate,
        limits: Limits,
    ) -> MessageRead:
        changes = data.model_dump(exclude_unset=True)
        repo = MessageRepository(conn, user_id)
        kind = await repo.get_kind(conversation_id, message_id)
        if kind is None:
            raise NotFound("message not found")
        role, item_type = kind
        if item_type is not None:
            raise Conflict(
                "this message is an item, and items do not change: delete it and add another"
            )
        if changes.get("tool_calls") and role != "assistant":
            raise InvalidInput("only assistant messages carry tool calls", field="tool_calls")
        if role in ("user", "system") and data.content is not None and not data.content.strip():
            raise InvalidInput("must not be blank", field="content")
        for name in ("content", "status", "metadata"):
            if name in changes and changes[name] is None:
                raise InvalidInput("must not be null", field=name)
        extra = {
            "metadata": data.metadata,
            "usage": data.usage,
            "tool_results": _dump_list(data.tool_results),
        }
        self._check(role, data.content, data.tool_calls, extra, limits, "")
        values: dict[str, Any] = {"updated_at": utc_now()}
        for name in ("content", "status", "usage"):
            if name in changes:
                values[name] = changes[name]
        if "metadata" in changes:
            values["attributes"] = data.metadata
        if "tool_calls" in changes:
            values["tool_calls"] = _dump_list(data.tool_calls) or None
        if "tool_results" in changes:
            values["tool_results"] = _dump_list(data.tool_results)
        row = await repo.update(conversation_id, message_id, values)
        if row is None:
            raise NotFound("message not found")
        return message_read(row)

    async def delete(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        message_id: uuid.UUID,
    ) -> None:
        """Soft delete: hidden from every read; its seq is never reused."""
        now = utc_now()
        row = await MessageRepository(conn, user_id).update(
            conversation_id, message_id, {"deleted_at": now, "updated_at": now}
        )
        if row is None:
            raise NotFound("message not found")


def message_read(row: Mapping[Any, Any]) -> MessageRead:
    """The one builder of :class:`MessageRead`: from a row convstore wrote itself (validated
    on the way in), without validating again (:func:`~convstore.kit.schemas.trusted`), on
    the values of :func:`message_wire`."""
    values = message_wire(row)
    calls, results = values["tool_calls"], values["tool_results"]
    if calls is not None:
        values["tool_calls"] = [trusted(ToolCall, call) for call in calls]
    if results is not None:
        values["tool_results"] = [trusted(ToolResult, result) for result in results]
    return trusted(MessageRead, values)


def _page_read(
    rows: Sequence[Mapping[str, Any]], next_cursor: str | None, has_more: bool
) -> Page[MessageRead]:
    return _MESSAGE_PAGE.model_construct(
        items=[message_read(r) for r in rows], next_cursor=next_cursor, has_more=has_more
    )


def message_wire(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A trusted row as :class:`MessageRead`'s JSON form holds it, without the model: its
    fields in the model's order under their names, the defaults of a stored tool call and
    result filled as the models fill them. ``orjson`` turns it into the very bytes Pydantic
    writes for :func:`message_read` of the row (``tests/test_read_models.py``)."""
    calls = row["tool_calls"]
    results = row["tool_results"]
    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "conversation_id": row["conversation_id"],
        "seq": row["seq"],
        "role": row["role"],
        "content": row["content"],
        "status": row["status"],
        "tool_calls": None
        if calls is None
        else [
            {
                "id": c["id"],
                "type": c.get("type", "function"),
                "name": c["name"],
                "arguments": c["arguments"],
            }
            for c in calls
        ],
        "tool_results": None
        if results is None
        else [
            {
                "tool_call_id": r["tool_call_id"],
                "output": r["output"],
                "is_error": r.get("is_error", False),
            }
            for r in results
        ],
        "tool_call_id": _tool_call_id(row),
        "metadata": row["attributes"],
        "parent_id": row["parent_id"],
        "usage": row["usage"],
        "item_type": row["item_type"],
        "item_id": row["item_id"],
        "item": row["item"],
    }


def _uuid_text(value: object) -> str:
    """What orjson writes of the ``uuid.UUID`` subclasses it does not know (asyncpg's)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def page_json(rows: Sequence[Mapping[str, Any]], next_cursor: str | None, has_more: bool) -> bytes:
    """A page of trusted message rows as the API's JSON: what Pydantic writes for the
    ``Page[MessageRead]`` of the rows, at a third of its cost (docs/performance.md), by
    :func:`wire_page`, or by Pydantic for a page :func:`wire_page` refuses."""
    try:
        return wire_page(rows, next_cursor, has_more)
    except orjson.JSONEncodeError:
        page = _page_read(rows, next_cursor, has_more)
        return _MESSAGE_PAGE_JSON.dump_json(page, by_alias=True)


def wire_page(rows: Sequence[Mapping[str, Any]], next_cursor: str | None, has_more: bool) -> bytes:
    """The page's JSON by orjson, from :func:`message_wire` of each row. orjson writes what
    Pydantic writes for every value a row holds (UTC timestamps with ``Z``, canonical UUIDs,
    the same shortest float forms) but refuses an integer beyond 64 bits, which convstore
    stores (``kit.jsoninput``): ``orjson.JSONEncodeError`` then."""
    items = [message_wire(r) for r in rows]
    page = {"items": items, "next_cursor": next_cursor, "has_more": has_more}
    return orjson.dumps(page, default=_uuid_text, option=orjson.OPT_UTC_Z)


def _tool_call_id(row: Mapping[Any, Any]) -> str | None:
    """A tool message's call id; for a ``function_call_output`` item, the item's."""
    if row["item_type"] == "function_call_output":
        call_id: str | None = row["item"].get("call_id")
        return call_id
    tool_call_id: str | None = row["tool_call_id"]
    return tool_call_id


def conversation_read(row: Mapping[Any, Any]) -> ConversationRead:
    """The one builder of :class:`ConversationRead`, from a trusted row (see
    :func:`message_read`)."""
    return trusted(
        ConversationRead,
        {
            "id": row["id"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "title": row["title"],
            "key": row["key"],
            "metadata": row["attributes"],
            "messages_count": row["messages_count"],
            "last_message_at": row["last_message_at"],
            "deleted_at": row["deleted_at"],
        },
    )


def _dump_list(models: Sequence[Any] | None) -> list[dict[str, Any]] | None:
    return None if models is None else [m.model_dump(mode="json") for m in models]


def _new_conversation(data: ConversationCreate, now: datetime) -> dict[str, Any]:
    """The row of a new conversation, without messages yet (its owner is the repository's)."""
    return {
        "id": uuid7(),
        "title": data.title,
        "key": data.key,
        "attributes": data.metadata,
        "messages_count": 0,
        "created_at": now,
        "updated_at": now,
    }


def _new_row(item: MessageCreate, conversation_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    """The row of a new message; its ``seq`` is given by the append."""
    return {
        "id": uuid7(),
        "conversation_id": conversation_id,
        "role": item.role,
        "content": item.content,
        "status": item.default_status(),
        "tool_calls": _dump_list(item.tool_calls),
        "tool_results": _dump_list(item.tool_results),
        "tool_call_id": item.tool_call_id,
        "attributes": item.metadata,
        "parent_id": item.parent_id,
        "usage": item.usage,
        "item_type": None,
        "item_id": None,
        "item": None,
        "created_at": now,
        "updated_at": now,
    }


def _is_seq(value: object) -> bool:
    """Whether ``value`` can be a position among messages: an int from 0 to ``MAX_SEQ``."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEQ


def _decode_message_cursor(cursor: str, scope: str) -> tuple[str, int]:
    """The direction and seq of a message cursor; a forged one (another shape, a seq no
    message can have) is malformed, like any other forgery."""
    key = decode_cursor(cursor, scope)
    if len(key) != 2 or key[0] not in ("after", "before") or not _is_seq(key[1]):
        raise InvalidInput("malformed cursor", field="cursor")
    return key[0], key[1]


conversation = ConversationService()
message = MessageService()
