"""``convstore chat``: talk to the assistant in the terminal, against the local store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from rich.console import Console

import convstore
from convstore.assistant.providers import build_assistant
from convstore.assistant.schemas import ChunkFrame, DoneFrame, ErrorFrame
from convstore.assistant.service import ChatService
from convstore.config import Settings
from convstore.errors import NotFound
from convstore.store import Store

DEFAULT_USER = "me@example.com"
HELP = (
    "Type a message (try: add buy milk tomorrow · what's left? · mark 1 done). "
    "Commands: /new starts a new conversation, /quit leaves."
)


class _OperatorLog(logging.Handler):
    """The terminal is the operator's own: it shows why the provider failed (its URL, whether
    a key is set), which API clients only read in the log. One line each, no traceback."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.print(record.getMessage(), style="red", markup=False, highlight=False)


async def run_chat(
    settings: Settings, console: Console, email: str, conversation_id: uuid.UUID | None
) -> None:
    """Open the store (migrating it), sign in as ``email`` (created if new), and chat.

    Raises:
        NotFound: ``conversation_id`` is not one of the user's conversations.
    """
    async with convstore.open(settings.database_url, settings=settings, migrate=True) as store:
        user_id = await _user(store, email)
        if conversation_id is not None:
            await store.for_user(user_id).conversations.get(conversation_id)
        chat = ChatService(store, settings, build_assistant(settings))
        provider_log = logging.getLogger("convstore.assistant")
        shown = _OperatorLog(console)
        provider_log.addHandler(shown)
        try:
            console.print(
                f"[bold]convstore chat[/bold] — {email}, assistant "
                f"[cyan]{chat.assistant.name}[/cyan]. {HELP}"
            )
            await _loop(store, chat, console, user_id, conversation_id)
        finally:
            provider_log.removeHandler(shown)
            await chat.aclose()


async def _loop(
    store: Store,
    chat: ChatService,
    console: Console,
    user_id: uuid.UUID,
    conversation_id: uuid.UUID | None,
) -> None:
    while True:
        line = await _read(console)
        if line is None or line.strip() in ("/quit", "/exit", "quit", "exit"):
            return
        if line.strip() == "/new":
            conversation_id = None
            console.print("[dim]new conversation[/dim]")
            continue
        if line.strip():
            conversation_id = await _turn(store, chat, console, user_id, conversation_id, line)


async def _user(store: Store, email: str) -> uuid.UUID:
    try:
        return (await store.users.get_by_email(email)).id
    except NotFound:
        return (await store.users.create(email=email)).id


async def _read(console: Console) -> str | None:
    try:
        return await asyncio.to_thread(console.input, "[bold green]you>[/bold green] ")
    except EOFError:
        console.print()  # end the prompt's line
        return None


async def _turn(
    store: Store,
    chat: ChatService,
    console: Console,
    user_id: uuid.UUID,
    conversation_id: uuid.UUID | None,
    text: str,
) -> uuid.UUID | None:
    """One turn; the conversation to continue (unchanged when the message was refused)."""
    try:
        async with store.writing(user_id) as conn:
            turn = await chat.begin(conn, user_id, conversation_id, text)
    except convstore.ConvstoreError as exc:
        console.print(exc.message, style="red", markup=False, highlight=False)
        return conversation_id
    console.print("[bold blue]assistant>[/bold blue] ", end="")
    async with contextlib.aclosing(chat.run(turn)) as frames:
        async for frame in frames:
            if isinstance(frame, ChunkFrame):
                console.print(frame.delta, end="", markup=False, highlight=False)
            elif isinstance(frame, DoneFrame):
                console.print()
                for call in frame.message.tool_calls or ():
                    console.print(f"  [dim]↳ {call.name}({call.arguments})[/dim]", highlight=False)
            elif isinstance(frame, ErrorFrame):
                console.print(f"\n[red]{frame.detail}[/red] (say it again to retry)")
        return turn.conversation.id
