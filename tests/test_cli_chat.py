"""``convstore chat``: the terminal chat, run as a real process with lines on its stdin."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

import convstore
from tests.conftest import BACKENDS, fast_settings
from tests.support.databases import fresh_database
from tests.test_cli import CONVSTORE

EMAIL = "x@example.com"


def chat(
    url: str, cwd: Path, *lines: str, args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run ``convstore chat --user x@example.com``, typing ``lines`` then end of input."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVSTORE_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [CONVSTORE, "chat", "--user", EMAIL, "--database-url", url, *args],
        input="".join(f"{line}\n" for line in lines),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_terminal_chat_adds_lists_and_completes_a_task(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as url:
        await _add_list_and_complete(url, tmp_path)


async def _add_list_and_complete(url: str, tmp_path: Path) -> None:
    result = chat(url, tmp_path, "add buy milk tomorrow", "list", "complete it")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "x@example.com, assistant builtin" in out
    assert "Added “Buy milk”, due tomorrow" in out
    assert "1. Buy milk (due tomorrow)" in out
    assert "Marked “Buy milk” as done." in out
    for tool in ("add_task(", "list_tasks(", "complete_task("):
        assert tool in out

    async with convstore.open(url, settings=fast_settings()) as store:
        user = await store.users.get_by_email(EMAIL)
        me = store.for_user(user.id)
        (task,) = (await me.tasks.list()).items
        assert (task.title, task.completed) == ("Buy milk", True)
        assert task.due_at is not None
        (conv,) = (await me.conversations.list()).items
        assert conv.title == "add buy milk tomorrow"
        stored = await me.messages.history(conv.id)
        assert [(m.role, m.status) for m in stored] == [
            ("user", "sent"),
            ("assistant", "complete"),
        ] * 3
        added, listed, completed = (m.tool_calls or [] for m in stored[1::2])
        assert [c.name for c in added + listed] == ["add_task", "list_tasks"]
        assert [(c.name, c.arguments) for c in completed] == [
            ("complete_task", {"task_id": str(task.id)})
        ]
        events = await me.tasks.events(task.id)
        assert [(e.action, e.conversation_id, e.tool_call_id) for e in events] == [
            ("created", conv.id, added[0].id),
            ("completed", conv.id, completed[0].id),
        ]

    # --conversation continues it; /quit leaves before the rest of the input.
    again = chat(
        url, tmp_path, "what is left?", "/quit", "add never", args=("--conversation", str(conv.id))
    )
    assert again.returncode == 0, again.stderr
    assert "You have no pending tasks." in again.stdout
    async with convstore.open(url, settings=fast_settings()) as store:
        me = store.for_user(user.id)
        assert len(await me.messages.history(conv.id)) == 8
        assert [t.title for t in (await me.tasks.list()).items] == ["Buy milk"]
        assert len((await me.conversations.list()).items) == 1


async def test_a_refused_first_message_does_not_lose_the_conversation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    result = chat(url, tmp_path, "x" * 10_001, "add buy bread", "add buy eggs")
    assert result.returncode == 0, result.stderr
    assert "longer than 10000 characters" in result.stdout
    assert "not found" not in result.stdout
    assert "Added “Buy bread”" in result.stdout
    async with convstore.open(url, settings=fast_settings()) as store:
        user = await store.users.get_by_email(EMAIL)
        me = store.for_user(user.id)
        assert [t.title for t in (await me.tasks.list()).items] == ["Buy bread", "Buy eggs"]
        (conv,) = (await me.conversations.list()).items
        assert conv.messages_count == 4


@pytest.mark.parametrize(
    ("conversation", "message"),
    [
        ("not-a-uuid", "error: --conversation is not a valid id"),
        (str(uuid.uuid4()), "error: conversation not found"),
    ],
    ids=["malformed", "unknown"],
)
def test_a_bad_conversation_id_exits_2_with_a_clear_message(
    tmp_path: Path, conversation: str, message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    result = chat(url, tmp_path, "add buy milk", args=("--conversation", conversation))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.strip() == message
    assert "Traceback" not in result.stderr
    assert "Added" not in result.stdout
