"""``convstore demo``: the library at work on the configured database, in a few seconds."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console
from rich.table import Table

import convstore
from convstore.config import Settings
from convstore.errors import NotFound
from convstore.kit.types import utc_now

DEMO_EMAIL = "demo@example.com"


async def run_demo(settings: Settings, console: Console) -> None:
    """Migrate, then record one chat turn with a tool call and list what is stored."""
    async with convstore.open(settings.database_url, settings=settings, migrate=True) as store:
        console.print(f"database: [bold]{settings.database_url}[/bold] (migrated to head)")
        try:
            user = await store.users.get_by_email(DEMO_EMAIL)
        except NotFound:
            user = await store.users.create(email=DEMO_EMAIL, name="Demo User")
        me = store.for_user(user.id)
        conv = await me.conversations.create(metadata={"model": "builtin"})
        task = await me.tasks.create(
            title="Buy milk", priority="high", tags=["home"], due_at=utc_now() + timedelta(days=1)
        )
        call = {
            "id": f"call_{task.id.hex[:8]}",
            "name": "add_task",
            "arguments": {"title": "Buy milk", "due": "tomorrow", "priority": "high"},
        }
        await me.messages.append_many(
            conv.id,
            [
                {"role": "user", "content": "Add buy milk tomorrow, high priority"},
                {"role": "assistant", "content": "", "tool_calls": [call]},
                {
                    "role": "tool",
                    "tool_call_id": call["id"],
                    "content": task.model_dump_json(include={"id", "title"}),
                },
                {
                    "role": "assistant",
                    "content": "Added “Buy milk” for tomorrow (high priority).",
                    "usage": {"prompt_tokens": 42, "completion_tokens": 12},
                },
            ],
        )
        conv = await me.conversations.get(conv.id)
        console.print(
            f"user [bold]{user.email}[/bold]; conversation “{conv.title}” "
            f"with {conv.messages_count} messages"
        )
        table = Table("seq", "role", "content", "tool calls", title="history")
        for msg in await me.messages.history(conv.id):
            calls = ", ".join(f"{c.name}({c.arguments})" for c in msg.tool_calls or ())
            table.add_row(str(msg.seq), msg.role, msg.content, calls)
        console.print(table)
        tasks = Table("title", "priority", "tags", "due", "done", title="tasks")
        page = await me.tasks.list(limit=10)
        for t in page.items:
            due = t.due_at.strftime("%Y-%m-%d") if t.due_at else ""
            tasks.add_row(t.title, t.priority, ", ".join(t.tags), due, "yes" if t.completed else "")
        console.print(tasks)
        recent = await me.conversations.list(limit=5)
        console.print(f"{len(recent.items)} recent conversation(s); more: {recent.has_more}")
