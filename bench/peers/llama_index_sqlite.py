"""llama-index ``SQLiteChatStore`` (``llama-index-storage-chat-store-sqlite``), sync (pysqlite) and
async (aiosqlite).

As its documentation shows (``SQLiteChatStore.from_uri("sqlite:///…")``, here its constructor
with the same two engines, to dispose of them; table made on construction; SQLAlchemy's
defaults, so the rollback journal rather than WAL), then ``add_message`` / ``async_add_message``
and ``get_messages`` / ``aget_messages`` by key (the conversation's id): a row per message, a
read returns the whole conversation ("the last 50" is its tail). There is no batch append
(``set_messages`` is meant to replace a conversation): W4 is unsupported; the bulk load calls
``set_messages`` once per (new, empty) conversation.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.llms import ChatMessage
from llama_index.storage.chat_store.sqlite import SQLiteChatStore
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

from bench.impl import Conv, Conversation, Op
from bench.peers.base import Peer, llama_message, text_of

DISTRIBUTIONS = ("llama-index-storage-chat-store-sqlite", "llama-index-core", "sqlalchemy")
UNSUPPORTED = {
    "W3": "get_keys() lists every key of the store: no owner, no order, no limit",
    "W4": "no batch append (set_messages is meant to replace a conversation)",
}


class _LlamaSqlite(Peer):
    backends = ("sqlite",)
    distributions = DISTRIBUTIONS
    unsupported = UNSUPPORTED

    async def open(self) -> None:
        """What ``from_uri`` does, keeping the engines to dispose of them."""
        self.engine = create_engine(f"sqlite:///{self.path}")
        self.async_engine = create_async_engine(f"sqlite+aiosqlite:///{self.path}")
        self.store = SQLiteChatStore(
            session=sessionmaker(self.engine),
            async_session=async_sessionmaker(self.async_engine, class_=AsyncSession),
            table_name="chatstore",
        )

    async def close(self) -> None:
        await self.async_engine.dispose()
        self.engine.dispose()


class LlamaSqliteSync(_LlamaSqlite):
    name = "llama-index SQLiteChatStore (sync)"
    slug = "llama_sqlite_sync"
    setup_note = "`from_uri` (pysqlite); `add_message`/`get_messages` (all, sliced to 50)"

    def load_conversation(self, conversation: Conversation) -> None:
        messages = [llama_message(m) for m in conversation.messages]
        self.store.set_messages(conversation.conv.key, messages)

    def append(self, conv: Conv, text: str) -> None:
        self.store.add_message(conv.key, ChatMessage(role="user", content=text))

    def last50(self, conv: Conv) -> Any:
        return self.store.get_messages(conv.key)[-50:]

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        def write(text: str) -> None:
            self.store.add_message(conv.key, ChatMessage(role="user", content=text))

        return [write] * count

    def read_back(self, conv: Conv) -> list[str]:
        return [text_of(m) for m in self.store.get_messages(conv.key)]


class LlamaSqliteAsync(_LlamaSqlite):
    name = "llama-index SQLiteChatStore (async)"
    share_with = "llama-index SQLiteChatStore (sync)"
    slug = "llama_sqlite_async"
    setup_note = "`from_uri` (aiosqlite); `async_add_message`/`aget_messages` (all, sliced to 50)"

    async def load_conversation(self, conversation: Conversation) -> None:
        messages = [llama_message(m) for m in conversation.messages]
        await self.store.aset_messages(conversation.conv.key, messages)

    async def append(self, conv: Conv, text: str) -> None:
        await self.store.async_add_message(conv.key, ChatMessage(role="user", content=text))

    async def last50(self, conv: Conv) -> Any:
        return (await self.store.aget_messages(conv.key))[-50:]

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        async def write(text: str) -> None:
            await self.store.async_add_message(conv.key, ChatMessage(role="user", content=text))

        return [write] * count

    async def read_back(self, conv: Conv) -> list[str]:
        return [text_of(m) for m in await self.store.aget_messages(conv.key)]


IMPLEMENTATIONS = (LlamaSqliteSync, LlamaSqliteAsync)
