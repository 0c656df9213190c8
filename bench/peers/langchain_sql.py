"""langchain-community ``SQLChatMessageHistory`` (SQLAlchemy), sync and async, on SQLite and
PostgreSQL.

As its documentation shows, one history per session id on a connection (here one shared
engine, as an application would keep: a connection string per history would build an engine
for each); the async variant takes an ``AsyncEngine`` (aiosqlite, asyncpg). Its table
(``message_store``: id, session_id, message) is created by the history itself, as shipped:
without an index on ``session_id``. Its reads return the whole session, so "the last 50" is
the tail of that list. Bulk load: ``add_messages`` / ``aadd_messages`` with 100 messages per
call (one ORM transaction).
"""

from __future__ import annotations

import warnings
from typing import Any

from langchain_core.messages import HumanMessage
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import create_async_engine

from bench.impl import Conv, Conversation, Op
from bench.peers.base import Peer, langchain_message, langchain_pair, text_of
from bench.stores import chunks

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.chat_message_histories import SQLChatMessageHistory

DISTRIBUTIONS = ("langchain-community", "langchain-core", "sqlalchemy")
UNSUPPORTED = {"W3": "no listing of sessions in its API"}


class LangchainSqlSync(Peer):
    name = "langchain-community SQL (sync)"
    slug = "langchain_sql_sync"
    distributions = DISTRIBUTIONS
    setup_note = (
        "one shared `Engine` (psycopg 3 / pysqlite); `add_messages`/`get_messages` "
        "(reads the whole session, sliced to 50); its table has no index on session_id"
    )
    unsupported = UNSUPPORTED

    async def open(self) -> None:
        self.engine = create_engine(self.sqlalchemy_url("psycopg"))
        SQLChatMessageHistory(session_id="setup", connection=self.engine)

    def make_handle(self, conv: Conv) -> Any:
        return SQLChatMessageHistory(session_id=conv.key, connection=self.engine)

    def load_conversation(self, conversation: Conversation) -> None:
        history = self.make_handle(conversation.conv)
        for chunk in chunks(conversation.messages):
            history.add_messages([langchain_message(m) for m in chunk])

    async def close(self) -> None:
        self.engine.dispose()

    def append(self, conv: Conv, text: str) -> None:
        self.handle(conv).add_messages([HumanMessage(content=text)])

    def last50(self, conv: Conv) -> Any:
        return self.handle(conv).get_messages()[-50:]

    def add_batch(self, conv: Conv, items: list[tuple[str, str]]) -> None:
        self.handle(conv).add_messages([langchain_pair(r, c) for r, c in items])

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        """One history per writer thread on the shared engine (its pool)."""
        ops: list[Op] = []
        for _ in range(count):
            history = SQLChatMessageHistory(session_id=conv.key, connection=self.engine)

            def write(text: str, h: Any = history) -> None:
                h.add_messages([HumanMessage(content=text)])

            ops.append(write)
        return ops

    def read_back(self, conv: Conv) -> list[str]:
        return [text_of(m) for m in self.handle(conv).get_messages()]


class LangchainSqlAsync(Peer):
    name = "langchain-community SQL (async)"
    share_with = "langchain-community SQL (sync)"
    slug = "langchain_sql_async"
    distributions = (*DISTRIBUTIONS, "aiosqlite", "asyncpg")
    setup_note = (
        "one shared `AsyncEngine` (asyncpg / aiosqlite); `aadd_messages`/`aget_messages` "
        "(reads the whole session, sliced to 50); its table has no index on session_id"
    )
    unsupported = UNSUPPORTED

    async def open(self) -> None:
        self.engine = create_async_engine(self.sqlalchemy_url("asyncpg", "aiosqlite"))
        await SQLChatMessageHistory(session_id="setup", connection=self.engine).aget_messages()

    def make_handle(self, conv: Conv) -> Any:
        return SQLChatMessageHistory(session_id=conv.key, connection=self.engine)

    async def load_conversation(self, conversation: Conversation) -> None:
        history = self.make_handle(conversation.conv)
        for chunk in chunks(conversation.messages):
            await history.aadd_messages([langchain_message(m) for m in chunk])

    async def close(self) -> None:
        await self.engine.dispose()

    async def append(self, conv: Conv, text: str) -> None:
        await self.handle(conv).aadd_messages([HumanMessage(content=text)])

    async def last50(self, conv: Conv) -> Any:
        return (await self.handle(conv).aget_messages())[-50:]

    async def add_batch(self, conv: Conv, items: list[tuple[str, str]]) -> None:
        await self.handle(conv).aadd_messages([langchain_pair(r, c) for r, c in items])

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        history = self.handle(conv)

        async def write(text: str) -> None:
            await history.aadd_messages([HumanMessage(content=text)])

        return [write] * count

    async def read_back(self, conv: Conv) -> list[str]:
        return [text_of(m) for m in await self.handle(conv).aget_messages()]


IMPLEMENTATIONS = (LangchainSqlSync, LangchainSqlAsync)
