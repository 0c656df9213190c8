"""llama-index ``PostgresChatStore`` (``llama-index-storage-chat-store-postgres``), sync (psycopg
3) and async (asyncpg).

As its documentation shows (``PostgresChatStore.from_params`` with a sync and an async
connection string, here its constructor with the same two engines, to dispose of them) (tables
made on construction, its default ``JSON[]`` column), then ``add_message`` /
``async_add_message`` and ``get_messages`` / ``aget_messages`` by key (the conversation's id).
It keeps a conversation as one row holding an array of all its messages: an append rewrites the
array, a read returns all of it ("the last 50" is its tail). There is no batch append
(``set_messages`` replaces the whole conversation): W4 is unsupported; the bulk load uses
``set_messages`` once per (new, empty) conversation.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.llms import ChatMessage
from llama_index.storage.chat_store.postgres import PostgresChatStore
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import sessionmaker

from bench.impl import Conv, Conversation, Op
from bench.peers.base import Peer, llama_message, text_of

DISTRIBUTIONS = ("llama-index-storage-chat-store-postgres", "llama-index-core", "sqlalchemy")
UNSUPPORTED = {
    "W3": "get_keys() lists every key of the store: no owner, no order, no limit",
    "W4": "no batch append (set_messages replaces the whole conversation)",
}


class _LlamaPostgres(Peer):
    backends = ("postgresql",)
    distributions = DISTRIBUTIONS
    unsupported = UNSUPPORTED

    async def open(self) -> None:
        """What ``from_params`` does, keeping the engines to dispose of them."""
        self.engine = create_engine(self.sqlalchemy_url("psycopg"))
        self.async_engine = create_async_engine(self.sqlalchemy_url("asyncpg"))
        self.store = PostgresChatStore(
            session=sessionmaker(self.engine),
            async_session=sessionmaker(self.async_engine, class_=AsyncSession),
            table_name="chatstore",
        )

    async def close(self) -> None:
        await self.async_engine.dispose()
        self.engine.dispose()


class LlamaPostgresSync(_LlamaPostgres):
    name = "llama-index PostgresChatStore (sync)"
    slug = "llama_postgres_sync"
    setup_note = (
        "`from_params` (psycopg 3); `add_message`/`get_messages` (the whole array, sliced to 50)"
    )

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


class LlamaPostgresAsync(_LlamaPostgres):
    name = "llama-index PostgresChatStore (async)"
    share_with = "llama-index PostgresChatStore (sync)"
    slug = "llama_postgres_async"
    setup_note = (
        "`from_params` (asyncpg); `async_add_message`/`aget_messages` (the whole array, "
        "sliced to 50)"
    )

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


IMPLEMENTATIONS = (LlamaPostgresSync, LlamaPostgresAsync)
