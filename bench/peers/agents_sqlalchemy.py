"""OpenAI Agents SDK ``SQLAlchemySession`` (``agents.extensions.memory.sqlalchemy_session``)
on asyncpg and aiosqlite URLs.

As its documentation shows: one session per session id, on an ``AsyncEngine`` the
application manages (one shared engine: ``from_url`` would build one per session), tables made
by ``create_tables=True`` on first use; ``add_items`` to append, ``get_items(limit=50)`` to read
the newest 50 (it has a limit). Messages are the SDK's input items (a tool-calling assistant
turn is its ``function_call`` items, a tool result a ``function_call_output``). Bulk load:
``add_items`` with the items of 100 messages per call.
"""

from __future__ import annotations

from typing import Any

from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
from sqlalchemy.ext.asyncio import create_async_engine

from bench.impl import Conv, Conversation, Op
from bench.peers.base import Peer, agents_items, text_of
from bench.stores import chunks

UNSUPPORTED = {"W3": "no listing of sessions in its API"}


class AgentsSqlAlchemy(Peer):
    name = "Agents SDK SQLAlchemySession"
    slug = "agents_sqlalchemy"
    distributions = ("openai-agents", "sqlalchemy", "asyncpg", "aiosqlite")
    setup_note = (
        "one shared `AsyncEngine` (asyncpg / aiosqlite), `create_tables=True`; "
        "`add_items`/`get_items(limit=50)`"
    )
    unsupported = UNSUPPORTED

    async def open(self) -> None:
        self.engine = create_async_engine(self.sqlalchemy_url("asyncpg", "aiosqlite"))
        first = SQLAlchemySession("setup", engine=self.engine, create_tables=True)
        await first.get_items(limit=1)

    def make_handle(self, conv: Conv) -> Any:
        return SQLAlchemySession(conv.key, engine=self.engine)

    async def load_conversation(self, conversation: Conversation) -> None:
        session = self.make_handle(conversation.conv)
        for chunk in chunks(conversation.messages):
            await session.add_items([item for m in chunk for item in agents_items(m)])

    async def close(self) -> None:
        await self.engine.dispose()

    async def append(self, conv: Conv, text: str) -> None:
        await self.handle(conv).add_items([{"role": "user", "content": text}])

    async def last50(self, conv: Conv) -> Any:
        return await self.handle(conv).get_items(limit=50)

    async def add_batch(self, conv: Conv, items: list[tuple[str, str]]) -> None:
        await self.handle(conv).add_items([{"role": r, "content": c} for r, c in items])

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        ops: list[Op] = []
        for _ in range(count):
            session = SQLAlchemySession(conv.key, engine=self.engine)

            async def write(text: str, s: Any = session) -> None:
                await s.add_items([{"role": "user", "content": text}])

            ops.append(write)
        return ops

    async def read_back(self, conv: Conv) -> list[str]:
        return [text_of(item) for item in await self.handle(conv).get_items()]


IMPLEMENTATIONS = (AgentsSqlAlchemy,)
