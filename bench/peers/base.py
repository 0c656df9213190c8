"""What the peers share: their own store (a PostgreSQL database or a SQLite file named after
the peer), its clean-up after the bulk load, and the dataset's messages in each peer's types."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any

import asyncpg

from bench.impl import Conv, Implementation, Message, Unsupported
from bench.stores import drop_pg, pg_database, remove_sqlite

NO_LISTING = "no listing of a user's conversations in its API"
NO_TASKS = "no tasks"


class Peer(Implementation):
    """A peer on its own store. Subclasses name their backend(s) and build their objects in
    :meth:`open`; histories bound to one conversation are cached by :meth:`handle`."""

    backends: tuple[str, ...] = ("postgresql", "sqlite")
    unsupported: dict[str, str] = {}
    share_with: str | None = None
    """The name of the twin (the same package's other variant) whose store this one uses:
    the twin bulk-loads it, this variant only runs the workloads on it."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.shared_from: Peer | None = None
        self._handles: dict[Conv, Any] = {}
        self.pg_url = ""
        """``postgresql://`` URL of the peer's database (PostgreSQL)."""
        self.path = ""
        """The peer's SQLite file."""

    async def setup(self) -> None:
        if self.shared_from is not None:
            self.pg_url, self.path = self.shared_from.pg_url, self.shared_from.path
            await self.open()
            return
        if self.ctx.backend == "postgresql":
            self.pg_url = await pg_database(self.ctx, self.slug)
        else:
            path = self.ctx.sqlite_path(self.slug)
            remove_sqlite(path)
            self.path = str(path)
        await self.open()

    async def open(self) -> None:
        """Create the peer's objects and its tables, the way its documentation does."""

    def sqlalchemy_url(self, pg_driver: str, sqlite_driver: str | None = None) -> str:
        if self.ctx.backend == "postgresql":
            return self.pg_url.replace("postgresql://", f"postgresql+{pg_driver}://", 1)
        suffix = f"+{sqlite_driver}" if sqlite_driver else ""
        return f"sqlite{suffix}:///{self.path}"

    async def after_load(self) -> None:
        """``VACUUM (ANALYZE)`` on PostgreSQL and ``ANALYZE`` plus a WAL checkpoint on SQLite,
        as convstore's dataset gets after its load."""
        if self.ctx.backend == "postgresql":
            conn = await asyncpg.connect(self.pg_url)
            try:
                await conn.execute("VACUUM (ANALYZE)")
            finally:
                await conn.close()
        else:
            await asyncio.to_thread(_sqlite_analyze, self.path)

    def handle(self, conv: Conv) -> Any:
        found = self._handles.get(conv)
        if found is None:
            found = self._handles[conv] = self.make_handle(conv)
        return found

    def make_handle(self, conv: Conv) -> Any:
        """The peer's object for one conversation (a history, a session); ``None`` when its
        API takes the conversation as an argument."""
        return None

    async def ready(self, convs: Sequence[Conv]) -> None:
        for conv in convs:
            self.handle(conv)

    async def drop(self) -> None:
        if self.ctx.keep or self.shared_from is not None:
            return
        if self.ctx.backend == "postgresql":
            await drop_pg(self.ctx, self.slug)
        elif self.path:
            remove_sqlite(self.ctx.sqlite_path(self.slug))

    def recent20(self, user_id: Any) -> Any:
        raise Unsupported(self.unsupported.get("W3", NO_LISTING))

    def append_batch(self, conv: Conv, items: list[tuple[str, str]]) -> Any:
        if "W4" in self.unsupported:
            raise Unsupported(self.unsupported["W4"])
        return self.add_batch(conv, items)

    def add_batch(self, conv: Conv, items: list[tuple[str, str]]) -> Any:
        raise Unsupported("no batch append")


def _sqlite_analyze(path: str) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("ANALYZE")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()


def langchain_message(m: Message) -> Any:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    if m.role == "user":
        return HumanMessage(content=m.content)
    if m.role == "tool":
        return ToolMessage(content=m.content, tool_call_id=m.tool_call_id or "")
    if m.role == "system":
        return SystemMessage(content=m.content)
    calls = [
        {"name": c["name"], "args": c.get("arguments") or {}, "id": c["id"], "type": "tool_call"}
        for c in m.tool_calls or ()
    ]
    return AIMessage(content=m.content, tool_calls=calls)


def langchain_pair(role: str, content: str) -> Any:
    return langchain_message(Message(role, content))


def agents_items(m: Message) -> list[dict[str, Any]]:
    """A message as the Agents SDK's input items: a tool-calling assistant turn becomes its
    ``function_call`` items (and a message item when it has text), a tool result a
    ``function_call_output``."""
    import json

    if m.role == "tool":
        return [{"type": "function_call_output", "call_id": m.tool_call_id, "output": m.content}]
    if m.role == "assistant" and m.tool_calls:
        items: list[dict[str, Any]] = (
            [{"role": "assistant", "content": m.content}] if m.content else []
        )
        items += [
            {
                "type": "function_call",
                "call_id": c["id"],
                "name": c["name"],
                "arguments": json.dumps(c.get("arguments") or {}),
            }
            for c in m.tool_calls
        ]
        return items
    return [{"role": m.role, "content": m.content}]


def llama_message(m: Message) -> Any:
    from llama_index.core.llms import ChatMessage

    extra: dict[str, Any] = {}
    if m.tool_calls:
        extra["tool_calls"] = m.tool_calls
    if m.tool_call_id:
        extra["tool_call_id"] = m.tool_call_id
    return ChatMessage(role=m.role, content=m.content, additional_kwargs=extra)


def text_of(item: Any) -> str:
    """The text of a stored message, whichever peer returned it."""
    if isinstance(item, dict):
        content = item.get("content")
        return content if isinstance(content, str) else ""
    content = getattr(item, "content", "")
    return content if isinstance(content, str) else str(content)
