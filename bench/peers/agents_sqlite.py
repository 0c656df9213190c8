"""OpenAI Agents SDK ``SQLiteSession`` (``agents.SQLiteSession``): the SDK's built-in SQLite
memory.

As its documentation shows: ``SQLiteSession(session_id, db_path)`` per session (its schema is
made when a session is built), ``add_items`` to append, ``get_items(limit=50)`` to read the
newest 50. Each call runs the stdlib driver in a worker thread (``asyncio.to_thread``) on a
connection per thread, behind one lock per database file. Bulk load: ``add_items`` with the
items of 100 messages per call.
"""

from __future__ import annotations

from typing import Any

from agents import SQLiteSession

from bench.impl import Conv, Conversation, Op
from bench.peers.base import Peer, agents_items, text_of
from bench.stores import chunks


class AgentsSqlite(Peer):
    name = "Agents SDK SQLiteSession"
    slug = "agents_sqlite"
    backends = ("sqlite",)
    distributions = ("openai-agents",)
    setup_note = (
        "`SQLiteSession(session_id, db_path)` per conversation; `add_items`/`get_items(limit=50)`"
    )
    unsupported = {"W3": "no listing of sessions in its API"}

    async def open(self) -> None:
        SQLiteSession("setup", self.path).close()

    def make_handle(self, conv: Conv) -> Any:
        return SQLiteSession(conv.key, self.path)

    async def load_conversation(self, conversation: Conversation) -> None:
        session = self.make_handle(conversation.conv)
        try:
            for chunk in chunks(conversation.messages):
                await session.add_items([item for m in chunk for item in agents_items(m)])
        finally:
            session.close()

    async def close(self) -> None:
        for session in self._handles.values():
            session.close()
        self._handles.clear()

    async def append(self, conv: Conv, text: str) -> None:
        await self.handle(conv).add_items([{"role": "user", "content": text}])

    async def last50(self, conv: Conv) -> Any:
        return await self.handle(conv).get_items(limit=50)

    async def add_batch(self, conv: Conv, items: list[tuple[str, str]]) -> None:
        await self.handle(conv).add_items([{"role": r, "content": c} for r, c in items])

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        self._writers = [SQLiteSession(conv.key, self.path) for _ in range(count)]
        ops: list[Op] = []
        for session in self._writers:

            async def write(text: str, s: Any = session) -> None:
                await s.add_items([{"role": "user", "content": text}])

            ops.append(write)
        return ops

    async def release_writers(self, writers: list[Op]) -> None:
        for session in self._writers:
            session.close()

    async def read_back(self, conv: Conv) -> list[str]:
        return [text_of(item) for item in await self.handle(conv).get_items()]


IMPLEMENTATIONS = (AgentsSqlite,)
