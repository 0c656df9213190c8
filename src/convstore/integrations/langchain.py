"""A LangChain ``BaseChatMessageHistory`` kept in convstore.

``ConvstoreChatMessageHistory(session_id, scope)`` keeps one history as the acting user's
conversation whose ``key`` is ``session_id``. LangChain messages are stored as items that every
other surface reads (a ``HumanMessage`` is a user ``message``, a ``SystemMessage`` a system
one, an ``AIMessage`` an assistant ``message`` followed by a ``function_call`` per tool call, a
``ToolMessage`` a ``function_call_output``); what the item model has no place for (the
message's ``id``, ``name``, ``additional_kwargs``, ``response_metadata``, usage…) rides in the
first item's ``langchain`` key, which other readers ignore, so the messages read back equal.
Items written by other surfaces read as the nearest LangChain messages. docs/integrations.md.

The async methods run on the caller's loop when it is the store's. The sync ones (``messages``,
``add_messages``, ``clear``) hand the work to the loop the store runs on, which must be running
in another thread: :meth:`ConvstoreChatMessageHistory.from_url` opens a store on a thread of
its own, so both kinds work from plain code and from inside a running loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import uuid
from collections.abc import Coroutine, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from convstore.extras import require

require("langchain_core", "convstore.integrations.langchain")

from langchain_core.chat_history import BaseChatMessageHistory  # noqa: E402
from langchain_core.messages import (  # noqa: E402
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_chunk_to_message,
    message_to_dict,
    messages_from_dict,
)
from langchain_core.messages.tool import ToolCall, tool_call  # noqa: E402

from convstore.config import Settings, get_settings  # noqa: E402
from convstore.db import Database, create_engine  # noqa: E402
from convstore.integrations.common import (  # noqa: E402
    KeyedConversation,
    all_items,
    resolve_user,
    stored,
)
from convstore.items.schemas import TEXT_PARTS, ItemRead  # noqa: E402
from convstore.store import Store, UserScope  # noqa: E402

T = TypeVar("T")
EXTRA = "langchain"
"""The item key holding what only LangChain reads."""
MESSAGE_ITEM = "langchain.message"
"""The type of the item holding a message the item model cannot show (a ``ChatMessage``, a
``FunctionMessage``, content that is not text and typed parts)."""
_FIELDS = ("id", "name", "additional_kwargs", "response_metadata")


def _content_fits(content: Any) -> bool:
    """Whether an item can carry the content as it is: a string or typed parts."""
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(
        isinstance(part, dict) and isinstance(part.get("type"), str) for part in content
    )


def _extras(message: BaseMessage) -> dict[str, Any]:
    extras: dict[str, Any] = {"type": message.type}
    for name in _FIELDS:
        value = getattr(message, name)
        if value:
            extras[name] = value
    return extras


def to_items(message: BaseMessage) -> list[dict[str, Any]]:
    """The items that store ``message`` (a chunk as the message it completes)."""
    message = message_chunk_to_message(message)
    extras = _extras(message)
    content = message.content
    if not _content_fits(content):
        return [{"type": MESSAGE_ITEM, "message": message_to_dict(message)}]
    if isinstance(message, (HumanMessage, SystemMessage)) and type(message) in (
        HumanMessage,
        SystemMessage,
    ):
        role = "user" if isinstance(message, HumanMessage) else "system"
        return [{"type": "message", "role": role, "content": content, EXTRA: extras}]
    if type(message) is AIMessage:
        if any(not isinstance(call.get("id"), str) for call in message.tool_calls):
            return [{"type": MESSAGE_ITEM, "message": message_to_dict(message)}]
        if message.usage_metadata:
            extras["usage_metadata"] = dict(message.usage_metadata)
        if message.invalid_tool_calls:
            extras["invalid_tool_calls"] = [dict(c) for c in message.invalid_tool_calls]
        items: list[dict[str, Any]] = []
        if content or not message.tool_calls:
            items.append({"type": "message", "role": "assistant", "content": content})
        for call in message.tool_calls:
            items.append(
                {
                    "type": "function_call",
                    "call_id": call["id"],
                    "name": call["name"],
                    "arguments": json.dumps(call["args"], ensure_ascii=False),
                }
            )
        items[0][EXTRA] = {**extras, "items": len(items)}
        return items
    if type(message) is ToolMessage:
        if message.status != "success":
            extras["status"] = message.status
        if message.artifact is not None:
            extras["artifact"] = message.artifact
        output = {"type": "function_call_output", "call_id": message.tool_call_id}
        return [{**output, "output": content, EXTRA: extras}]
    return [{"type": MESSAGE_ITEM, "message": message_to_dict(message)}]


def _known(extras: dict[str, Any]) -> dict[str, Any]:
    return {name: extras[name] for name in _FIELDS if name in extras}


def _text(content: Any) -> Any:
    """A message's content for LangChain: text parts as one string, other parts as given."""
    if not isinstance(content, list) or not content:
        return content
    texts = []
    for part in content:
        key = TEXT_PARTS.get(str(part.get("type"))) if isinstance(part, dict) else None
        if key is None or not isinstance(part.get(key), str):
            return content
        texts.append(part[key])
    return "\n\n".join(texts)


def _call(item: dict[str, Any]) -> ToolCall:
    try:
        args = json.loads(item.get("arguments") or "{}")
    except ValueError:
        args = {}
    return tool_call(
        name=str(item.get("name", "")),
        args=args if isinstance(args, dict) else {},
        id=item.get("call_id"),
    )


def from_items(items: Sequence[dict[str, Any]]) -> list[BaseMessage]:
    """The LangChain messages of a conversation's items, in order: the adapter's own exactly,
    others as the nearest messages (``reasoning`` and kinds LangChain has none for left out;
    an item whose ``langchain`` key does not make a message is read like any other)."""
    messages: list[BaseMessage] = []
    loose_ai = False  # whether messages[-1] is an assistant message read from a plain item
    i = 0
    while i < len(items):
        item = items[i]
        try:
            own = _own(item, items[i + 1 :])
        except (KeyError, TypeError, ValueError):  # ValueError: pydantic's ValidationError
            own = None
        if own is not None:
            message, used = own
            messages.append(message)
            i += used
            loose_ai = False
            continue
        i += 1
        loose_ai = _plain(item, messages, loose_ai)
    return messages


def _own(
    item: dict[str, Any], following: Sequence[dict[str, Any]]
) -> tuple[BaseMessage, int] | None:
    """The message the adapter stored from ``item`` and the items after it, with how many
    items it takes; None for an item of another writer."""
    if item.get("type") == MESSAGE_ITEM:
        return messages_from_dict([item["message"]])[0], 1
    extras = item.get(EXTRA)
    if not isinstance(extras, dict):
        return None
    known = _known(extras)
    kind = extras.get("type")
    if kind == "human":
        return HumanMessage(content=item["content"], **known), 1
    if kind == "system":
        return SystemMessage(content=item["content"], **known), 1
    if kind == "tool":
        tool = ToolMessage(
            content=item["output"],
            tool_call_id=item["call_id"],
            status=extras.get("status", "success"),
            artifact=extras.get("artifact"),
            **known,
        )
        return tool, 1
    if kind != "ai":
        return None
    group = [item]
    for next_item in following[: int(extras.get("items", 1)) - 1]:
        if next_item.get("type") != "function_call":  # cut short by a removal
            break
        group.append(next_item)
    ai = AIMessage(
        content=item["content"] if item.get("type") == "message" else "",
        tool_calls=[_call(g) for g in group if g.get("type") == "function_call"],
        invalid_tool_calls=extras.get("invalid_tool_calls", []),
        usage_metadata=extras.get("usage_metadata"),
        **known,
    )
    return ai, len(group)


def _plain(item: dict[str, Any], messages: list[BaseMessage], loose_ai: bool) -> bool:
    """Append the message an item of another writer reads as, if any; whether the last
    message is now an assistant message that following function calls join."""
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        role = item.get("role")
        content = _text(item.get("content", ""))
        if role == "user":
            messages.append(HumanMessage(content=content))
        elif role in ("system", "developer"):
            messages.append(SystemMessage(content=content))
        elif role == "assistant":
            messages.append(AIMessage(content=content))
            return True
        return False
    if kind == "function_call":
        call = _call(item)
        last = messages[-1] if messages else None
        if loose_ai and isinstance(last, AIMessage):
            messages[-1] = AIMessage(content=last.content, tool_calls=[*last.tool_calls, call])
        else:
            messages.append(AIMessage(content="", tool_calls=[call]))
        return True
    if kind == "function_call_output":
        output = _text(item.get("output", ""))
        messages.append(ToolMessage(content=output, tool_call_id=str(item.get("call_id", ""))))
    return False


class _LoopThread:
    """An event loop running on a daemon thread of its own, for a store that sync code uses."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="convstore-langchain", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class ConvstoreChatMessageHistory(BaseChatMessageHistory):
    """The chat message history of one user's conversation named ``session_id``.

    ``loop`` is the event loop the scope's store runs on (default: the loop running where the
    history is made, if any); the sync methods need it running in another thread, and raise
    ``RuntimeError`` rather than block it when called on it.
    """

    def __init__(
        self,
        session_id: str,
        scope: UserScope,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.session_id = session_id
        self.scope = scope
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self.loop = loop
        self._conversation = KeyedConversation(scope, session_id)
        self._owned: tuple[Store, _LoopThread] | None = None
        self._closed = False

    @classmethod
    def from_url(
        cls,
        session_id: str,
        *,
        url: str,
        user: str | uuid.UUID,
        migrate: bool = False,
        settings: Settings | None = None,
    ) -> Self:
        """Open a store on ``url`` on a thread of its own, which :meth:`close` (or ``with``)
        closes. ``user`` is a user's id, or an email whose user is created when there is none;
        ``migrate`` first upgrades the schema (a new database needs it)."""
        settings = settings or get_settings()
        worker = _LoopThread()

        async def start() -> tuple[Store, UserScope]:
            store = Store(Database(create_engine(settings, url=url)), settings)
            try:
                if migrate:
                    from convstore.migrate import upgrade

                    await upgrade(store.db.engine, "head")
                return store, await resolve_user(store, user)
            except BaseException:
                await store.close()
                raise

        try:
            store, scope = worker.run(start())
        except BaseException:
            worker.stop()
            raise
        history = cls(session_id, scope, loop=worker.loop)
        history._owned = (store, worker)
        return history

    def close(self) -> None:
        """Close the store :meth:`from_url` opened and stop its thread (nothing otherwise)."""
        if self._owned is not None:
            store, worker = self._owned
            self._owned = None
            self._closed = True
            try:
                worker.run(store.close())
            finally:
                worker.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # The store's loop.

    def _check_open(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self._closed:
            coro.close()
            raise RuntimeError("the history is closed (its store with it)")

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        self._check_open(coro)
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self.loop
        if loop is None or loop is running or not loop.is_running():
            coro.close()
            raise RuntimeError(
                "the store's event loop is not running in another thread: use the async "
                "methods (aget_messages, aadd_messages, aclear) on it, or open the history "
                "with ConvstoreChatMessageHistory.from_url"
            )
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        return future.result()

    async def _async(self, coro: Coroutine[Any, Any, T]) -> T:
        self._check_open(coro)
        loop = self.loop
        if loop is None or loop is asyncio.get_running_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    # The history, on the store's loop.

    async def _get(self) -> list[BaseMessage]:
        none: list[ItemRead] = []
        reads = await self._conversation.read(
            lambda conversation_id: all_items(self.scope, conversation_id), none
        )
        return from_items([stored(r) for r in reads])

    async def _add(self, messages: Sequence[BaseMessage]) -> None:
        items = [item for message in messages for item in to_items(message)]
        if not items:
            return
        await self._conversation.write(
            lambda conversation_id: self.scope.items.add(conversation_id, items)
        )

    async def _clear(self) -> None:
        await self._conversation.clear()

    # BaseChatMessageHistory.

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """Every message, oldest first."""
        return self._sync(self._get())

    async def aget_messages(self) -> list[BaseMessage]:
        return await self._async(self._get())

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append ``messages`` in order, in one transaction."""
        self._sync(self._add(messages))

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        await self._async(self._add(messages))

    def clear(self) -> None:
        """Remove every message (the conversation stays, empty)."""
        self._sync(self._clear())

    async def aclear(self) -> None:
        await self._async(self._clear())


__all__ = ["ConvstoreChatMessageHistory", "from_items", "to_items"]
