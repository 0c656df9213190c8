"""convstore through its library API (``convstore.open`` → ``Store``), as an
:class:`~bench.impl.Implementation`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from importlib import metadata
from typing import Any

import convstore
from bench.fixture import USER_TEXT, W6_TAG, check_w5
from bench.impl import Context, Conv, Conversation, Implementation, Message, Op
from bench.stores import chunks, drop_scratch, scratch
from convstore import Settings


def bench_settings(**overrides: Any) -> Settings:
    """Defaults as shipped (SQLite synchronous=FULL, pool pre-ping on, pool of 10 + 5)."""
    return Settings.model_validate({"env": "development", **overrides})


def batch_items(size: int) -> list[dict[str, Any]]:
    """A batch of alternating user and assistant messages (W4)."""
    return [{"role": role, "content": content} for role, content in batch_pairs(size)]


def batch_pairs(size: int) -> list[tuple[str, str]]:
    return [("user" if i % 2 == 0 else "assistant", f"{USER_TEXT} #{i}") for i in range(size)]


def message_item(m: Message) -> dict[str, Any]:
    item: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        item["tool_calls"] = m.tool_calls
    if m.tool_call_id:
        item["tool_call_id"] = m.tool_call_id
    return item


class Convstore(Implementation):
    """The library with the shipped settings, one ``Store`` for every workload."""

    name = "convstore"
    kind = "convstore"
    slug = "convstore"
    distributions = ("convstore", "sqlalchemy")
    setup_note = (
        "`convstore.open` with the shipped settings; bulk load: `conversations.create` with "
        "its first 100 messages, then `messages.append_many` (100 per call), into an empty "
        "schema"
    )

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._stack = AsyncExitStack()
        self.store: convstore.Store | None = None
        self._scratch: str | None = None

    def versions(self) -> dict[str, str]:
        out = super().versions()
        driver = "asyncpg" if self.ctx.backend == "postgresql" else "aiosqlite"
        out[driver] = metadata.version(driver)
        return out

    async def setup(self) -> None:
        self._scratch = await scratch(self.ctx, "load_convstore")

    async def bulk_load(self, conversations: Any) -> Any:
        assert self._scratch is not None
        async with convstore.open(self._scratch, settings=bench_settings()) as store:
            self._load_store = store
            timer = await super().bulk_load(conversations)
        await drop_scratch(self.ctx, self._scratch)
        self._scratch = None
        return timer

    async def load_conversation(self, conversation: Conversation) -> None:
        me = self._load_store.for_user(conversation.conv.user_id)
        first, *rest = chunks(conversation.messages) or [[]]
        conv = await me.conversations.create(messages=[message_item(m) for m in first])
        for chunk in rest:
            await me.messages.append_many(conv.id, [message_item(m) for m in chunk])

    async def ready(self, convs: Sequence[Conv]) -> None:
        self.store = await self._stack.enter_async_context(
            convstore.open(self.ctx.dataset_url, settings=bench_settings())
        )

    async def close(self) -> None:
        await self._stack.aclose()

    async def drop(self) -> None:
        if self._scratch:
            await drop_scratch(self.ctx, self._scratch)

    def _me(self, user_id: uuid.UUID) -> convstore.UserScope:
        assert self.store is not None
        return self.store.for_user(user_id)

    async def append(self, conv: Conv, text: str) -> Any:
        return await self._me(conv.user_id).messages.append(conv.id, role="user", content=text)

    async def last50(self, conv: Conv) -> Any:
        return await self._me(conv.user_id).messages.history(conv.id, limit=50)

    async def recent20(self, user_id: uuid.UUID) -> Any:
        return await self._me(user_id).conversations.list(limit=20)

    async def pending_tasks(self, user_id: uuid.UUID) -> Any:
        return await self._me(user_id).tasks.list(completed=False, tag=W6_TAG, limit=20)

    async def new_conversation(self, user_id: uuid.UUID, title: str) -> Conv:
        conv = await self._me(user_id).conversations.create(title=title)
        return Conv(conv.id, user_id)

    async def append_batch(self, conv: Conv, items: list[tuple[str, str]]) -> Any:
        return await self._me(conv.user_id).messages.append_many(
            conv.id, [{"role": r, "content": c} for r, c in items]
        )

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        me = self._me(conv.user_id)

        async def write(text: str) -> None:
            await me.messages.append(conv.id, role="user", content=text)

        return [write] * count

    async def check_w5(self, conv: Conv, writers: int, per_writer: int) -> dict[str, Any]:
        return await check_w5(self.ctx.backend, self.ctx.dataset_url, conv.id, writers, per_writer)
