"""langchain-postgres ``PostgresChatMessageHistory`` (psycopg 3), sync and async.

As its documentation shows: ``PostgresChatMessageHistory.create_tables(connection, table)``
once, then one history per session id (a UUID, here the conversation's id) on a shared
psycopg connection (``psycopg.connect``, default settings), ``add_messages`` /
``aadd_messages`` to append and ``get_messages`` / ``aget_messages`` to read. Its reads return
the whole session, so "the last 50" is the tail of that list. Bulk load: ``add_messages`` with
100 messages per call (one ``executemany``).
"""

from __future__ import annotations

from typing import Any

import psycopg
from langchain_core.messages import HumanMessage
from langchain_postgres import PostgresChatMessageHistory

from bench.impl import Conv, Conversation, Op
from bench.peers.base import Peer, langchain_message, langchain_pair, text_of
from bench.stores import chunks

TABLE = "chat_history"
DISTRIBUTIONS = ("langchain-postgres", "langchain-core", "psycopg")


class LangchainPostgresSync(Peer):
    name = "langchain-postgres (sync)"
    slug = "langchain_postgres_sync"
    backends = ("postgresql",)
    distributions = DISTRIBUTIONS
    setup_note = (
        "one shared `psycopg.Connection`; `create_tables`; `add_messages`/`get_messages` "
        "(reads the whole session, sliced to 50)"
    )
    unsupported = {"W3": "no listing of sessions in its API"}

    async def open(self) -> None:
        self.conn = psycopg.connect(self.pg_url)
        PostgresChatMessageHistory.create_tables(self.conn, TABLE)

    def make_handle(self, conv: Conv) -> Any:
        return PostgresChatMessageHistory(TABLE, conv.key, sync_connection=self.conn)

    def load_conversation(self, conversation: Conversation) -> None:
        history = self.make_handle(conversation.conv)
        for chunk in chunks(conversation.messages):
            history.add_messages([langchain_message(m) for m in chunk])

    async def close(self) -> None:
        self.conn.close()

    def append(self, conv: Conv, text: str) -> None:
        self.handle(conv).add_messages([HumanMessage(content=text)])

    def last50(self, conv: Conv) -> Any:
        return self.handle(conv).get_messages()[-50:]

    def add_batch(self, conv: Conv, items: list[tuple[str, str]]) -> None:
        self.handle(conv).add_messages([langchain_pair(r, c) for r, c in items])

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        """A connection per writer thread (a psycopg connection serialises its users)."""
        self._writer_conns = [psycopg.connect(self.pg_url) for _ in range(count)]
        ops: list[Op] = []
        for c in self._writer_conns:
            history = PostgresChatMessageHistory(TABLE, conv.key, sync_connection=c)

            def write(text: str, h: Any = history) -> None:
                h.add_messages([HumanMessage(content=text)])

            ops.append(write)
        return ops

    async def release_writers(self, writers: list[Op]) -> None:
        for c in self._writer_conns:
            c.close()

    def read_back(self, conv: Conv) -> list[str]:
        return [text_of(m) for m in self.handle(conv).get_messages()]


class LangchainPostgresAsync(Peer):
    name = "langchain-postgres (async)"
    share_with = "langchain-postgres (sync)"
    slug = "langchain_postgres_async"
    backends = ("postgresql",)
    distributions = DISTRIBUTIONS
    setup_note = (
        "one shared `psycopg.AsyncConnection`; `acreate_tables`; `aadd_messages`/"
        "`aget_messages` (reads the whole session, sliced to 50)"
    )
    unsupported = {"W3": "no listing of sessions in its API"}

    async def open(self) -> None:
        self.conn = await psycopg.AsyncConnection.connect(self.pg_url)
        await PostgresChatMessageHistory.acreate_tables(self.conn, TABLE)

    def make_handle(self, conv: Conv) -> Any:
        return PostgresChatMessageHistory(TABLE, conv.key, async_connection=self.conn)

    async def load_conversation(self, conversation: Conversation) -> None:
        history = self.make_handle(conversation.conv)
        for chunk in chunks(conversation.messages):
            await history.aadd_messages([langchain_message(m) for m in chunk])

    async def close(self) -> None:
        await self.conn.close()

    async def append(self, conv: Conv, text: str) -> None:
        await self.handle(conv).aadd_messages([HumanMessage(content=text)])

    async def last50(self, conv: Conv) -> Any:
        return (await self.handle(conv).aget_messages())[-50:]

    async def add_batch(self, conv: Conv, items: list[tuple[str, str]]) -> None:
        await self.handle(conv).aadd_messages([langchain_pair(r, c) for r, c in items])

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        self._writer_conns = [
            await psycopg.AsyncConnection.connect(self.pg_url) for _ in range(count)
        ]
        ops: list[Op] = []
        for c in self._writer_conns:
            history = PostgresChatMessageHistory(TABLE, conv.key, async_connection=c)

            async def write(text: str, h: Any = history) -> None:
                await h.aadd_messages([HumanMessage(content=text)])

            ops.append(write)
        return ops

    async def release_writers(self, writers: list[Op]) -> None:
        for c in self._writer_conns:
            await c.close()

    async def read_back(self, conv: Conv) -> list[str]:
        return [text_of(m) for m in await self.handle(conv).aget_messages()]


IMPLEMENTATIONS = (LangchainPostgresSync, LangchainPostgresAsync)
