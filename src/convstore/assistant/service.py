"""The chat turn: store the user's message, run the assistant with the task tools, and store
its reply with the tool calls, their results, usage and status.

The assistant message is written first with status ``streaming`` (right after the user's
message, so the pair keeps its order) and finalised as ``complete`` or ``error``. Whatever
happens — a provider failure, a timeout, a client that goes away mid-stream — the rows end
consistent: the user message stays, and the reply says how it ended.

The entry point (a chat route, a socket frame, the terminal) opens the transaction that begins
a turn; the turn's later steps run in short transactions of their own (:class:`Units`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import anyio
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.assistant.executor import ToolScope
from convstore.assistant.external import McpClients, Tool
from convstore.assistant.protocol import (
    Assistant,
    ProviderError,
    ProviderTimeout,
    TextDelta,
    ToolRunner,
    ToolStep,
    Turn,
    Units,
)
from convstore.assistant.schemas import (
    ChunkFrame,
    DoneFrame,
    ErrorFrame,
    Frame,
    ToolCallFrame,
    ToolResultFrame,
    tool_error,
)
from convstore.assistant.streams import FrameLog
from convstore.config import Settings
from convstore.conversations.schemas import (
    ConversationCreate,
    ConversationRead,
    MessageCreate,
    MessageRead,
    MessageUpdate,
)
from convstore.conversations.service import conversation as conversation_service
from convstore.conversations.service import message as message_service
from convstore.conversations.service import title_from_message
from convstore.errors import ConvstoreError, InvalidInput
from convstore.kit import metrics
from convstore.kit.types import utc_now

HIDDEN_STATUSES = ("streaming", "error")
"""Replies that never completed are not shown to the assistant again."""


@dataclass(frozen=True)
class ChatTurn:
    """A started turn: the conversation, the stored user message, the reply being written."""

    user_id: uuid.UUID
    conversation: ConversationRead
    user_message: MessageRead
    reply: MessageRead


class TurnStream:
    """The frames of a turn that runs in a task of its own (:meth:`ChatService.start`).

    The turn does not depend on its reader: a reader that never starts, or stops, leaves the
    turn to finish and store its reply; :meth:`cancel` ends it early instead (the reply is
    stored as interrupted).
    """

    def __init__(self, task: asyncio.Task[None], frames: asyncio.Queue[Frame | None]) -> None:
        self._task = task
        self._frames = frames

    def __aiter__(self) -> TurnStream:
        return self

    async def __anext__(self) -> Frame:
        frame = await self._frames.get()
        if frame is None:
            raise StopAsyncIteration
        return frame

    def cancel(self) -> None:
        """End the turn now; its reply is finalised as ``error`` ("interrupted")."""
        self._task.cancel()


class ChatService:
    """Runs chat turns with one assistant provider; ``units`` opens their transactions."""

    def __init__(
        self,
        units: Units,
        settings: Settings,
        assistant: Assistant,
        tools: Sequence[Tool] = (),
    ) -> None:
        self.units = units
        self.assistant = assistant
        self.settings = settings
        self.tools = tuple(tools)
        """The library user's tools, offered (with the MCP servers') to model providers."""
        self._mcp = McpClients(settings.mcp_servers) if settings.mcp_servers else None
        self._running: set[asyncio.Task[None]] = set()
        self._models: dict[str, Assistant] = {}

    async def aclose(self) -> None:
        """End the turns still running (their replies stored as interrupted) and release the
        provider's resources (its HTTP connections)."""
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        if self._mcp is not None:
            await self._mcp.aclose()
        for assistant in (self.assistant, *self._models.values()):
            close = getattr(assistant, "aclose", None)
            if close is not None:
                await close()

    def assistant_for(self, conv: ConversationRead) -> Assistant:
        """The assistant of the conversation: the model its ``metadata.model`` names (one of
        ``CONVSTORE_CHAT_MODELS``), else the configured provider. Without a list of models,
        ``metadata.model`` is the application's own data and the configured provider answers.

        Raises:
            InvalidInput: models are listed and ``metadata.model`` names none of them.
        """
        metadata = conv.metadata if isinstance(conv.metadata, dict) else {}
        name = metadata.get("model")
        models = self.settings.chat_models
        if name is None or not models:
            return self.assistant
        if not isinstance(name, str) or name not in models:
            allowed = ", ".join(sorted(models))
            raise InvalidInput(f"unknown model (allowed: {allowed})", field="metadata.model")
        if name not in self._models:
            from convstore.assistant.providers import build_assistant

            self._models[name] = build_assistant(self.settings, models[name])
        return self._models[name]

    def start(self, turn: ChatTurn) -> TurnStream:
        """Run ``turn`` in a task the service owns, from now on: whether or not anyone reads
        its frames, the reply ends ``complete`` or ``error``, never left ``streaming`` (a
        response whose client is gone before it starts never runs its body).

        The frames are also stored, in batches (:mod:`convstore.assistant.streams`), for
        clients that resume the stream on any server; a cancel request stored there ends the
        turn (its reply stored as interrupted, the last frame an ``error``)."""
        frames: asyncio.Queue[Frame | None] = asyncio.Queue()
        log = FrameLog(self.units, turn.user_id, turn.conversation.id, turn.reply.id)
        task = asyncio.create_task(self._pump(turn, frames, log))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return TurnStream(task, frames)

    async def _pump(
        self, turn: ChatTurn, frames: asyncio.Queue[Frame | None], log: FrameLog
    ) -> None:
        ended = asyncio.Event()
        watcher = asyncio.create_task(self._watch(log, ended, asyncio.current_task()))
        try:
            async with contextlib.aclosing(self.run(turn, log)) as produced:
                async for frame in produced:
                    log.add(frame)
                    frames.put_nowait(frame)
        except asyncio.CancelledError:
            if log.final is not None:  # the "interrupted" frame, stored with the reply
                frames.put_nowait(log.final)
            raise
        finally:
            frames.put_nowait(None)
            ended.set()
            with anyio.CancelScope(shield=True):
                await asyncio.gather(watcher, return_exceptions=True)
                retention = timedelta(hours=self.settings.chat_frames_retention_hours)
                with contextlib.suppress(ConvstoreError):
                    await log.flush(prune_before=retention)

    async def _watch(
        self, log: FrameLog, ended: asyncio.Event, turn_task: asyncio.Task[Any] | None
    ) -> None:
        """Store the turn's frames every ``chat_frames_flush_seconds`` until ``ended``; cancel
        the turn when a cancel request is found."""
        while not ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), self.settings.chat_frames_flush_seconds)
            if ended.is_set():
                return
            try:
                cancelled = await log.flush()
            except ConvstoreError:
                continue  # the database is away for a moment: the frames wait for the next
            if cancelled and turn_task is not None:
                turn_task.cancel()
                return

    async def begin(
        self,
        conn: AsyncConnection,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID | None,
        content: str,
    ) -> ChatTurn:
        """Store the user message and an empty ``streaming`` reply after it, on ``conn`` (a new
        conversation, titled from the message, when ``conversation_id`` is None). The caller
        commits before :meth:`start`: the user message is kept whatever the model does."""
        limits = self.settings.limits
        if conversation_id is None:
            conv = await conversation_service.create(
                conn, user_id, ConversationCreate(title=title_from_message(content)), limits
            )
            conversation_id = conv.id
        user_msg, reply = await message_service.append_many(
            conn,
            user_id,
            conversation_id,
            [
                MessageCreate(role="user", content=content),
                MessageCreate(role="assistant", content="", status="streaming"),
            ],
            limits,
            prefixed=False,
        )
        conv = await conversation_service.get(conn, user_id, conversation_id)
        self.assistant_for(conv)  # an unknown model: refused before anything is committed
        return ChatTurn(user_id, conv, user_msg, reply)

    async def retry(
        self, conn: AsyncConnection, user_id: uuid.UUID, conversation_id: uuid.UUID
    ) -> ChatTurn:
        """Answer the last user message again, after a reply that failed: a new ``streaming``
        reply on ``conn`` (committed by the caller before :meth:`start`).

        Raises:
            InvalidInput: the conversation does not end with a user message or a failed reply.
        """
        last = (
            await message_service.page(
                conn, user_id, conversation_id, limit=2, after=None, before=None, cursor=None
            )
        ).items
        user_msg = next((m for m in reversed(last) if m.role == "user"), None)
        if user_msg is None or (last[-1].role != "user" and last[-1].status != "error"):
            raise InvalidInput(
                "nothing to retry: the last reply did not fail", field="conversation_id"
            )
        (reply,) = await message_service.append_many(
            conn,
            user_id,
            conversation_id,
            [MessageCreate(role="assistant", content="", status="streaming")],
            self.settings.limits,
            prefixed=False,
        )
        conv = await conversation_service.get(conn, user_id, conversation_id)
        self.assistant_for(conv)  # an unknown model: refused before anything is committed
        return ChatTurn(user_id, conv, user_msg, reply)

    async def run(self, turn: ChatTurn, log: FrameLog | None = None) -> AsyncGenerator[Frame, None]:
        """Produce the reply: ``chunk``, ``tool_call`` and ``tool_result`` frames as the turn
        goes, then ``done`` or ``error``; their ids count 1, 2, 3… With ``log``, the last
        frame (and any not yet stored) is stored in the transaction that finalises the reply,
        so a reply that ended always has its last frame in the store."""
        reply, conv = turn.reply, turn.conversation
        runner = ToolRunner(
            self.units,
            ToolScope(turn.user_id, conv.id, reply.id),
            max_calls=self.settings.assistant_max_tool_calls,
        )
        frames = _FrameCounter(conv.id, reply.id, runner)
        text: list[str] = []
        usage: dict[str, Any] | None = None
        started = time.perf_counter()
        try:
            assistant = self.assistant_for(conv)
            if assistant.name != "builtin":  # the builtin assistant knows the task tools only
                runner.extra = await self._extra_tools()
            history = await self._history(turn)
            model_turn = Turn(
                history,
                turn.user_id,
                conv.id,
                reply.id,
                utc_now(),
                _zone(conv, self.settings.assistant_timezone),
            )
            async with (
                asyncio.timeout(self.settings.chat_turn_timeout_seconds),
                contextlib.aclosing(assistant.run(model_turn, runner)) as events,
            ):
                async for event in events:
                    for frame in frames.tools():
                        yield frame
                    if isinstance(event, TextDelta):
                        self._check_length(text, event.text)
                        yield ChunkFrame(
                            id=frames.next(),
                            conversation_id=conv.id,
                            message_id=reply.id,
                            index=len(text),
                            delta=event.text,
                        )
                        text.append(event.text)
                    elif not isinstance(event, ToolStep):
                        usage = event.counts
            for frame in frames.tools():
                yield frame
        except (ProviderError, TimeoutError) as exc:
            error = (
                exc
                if isinstance(exc, ProviderError)
                else ProviderTimeout("the assistant did not finish in time")
            )
            last = frames.tools()  # finalised before anything is yielded: a reader that stops
            final = await self._finalize(turn, text, runner, usage, error, frames, log, last)
            outcome = "timeout" if isinstance(error, ProviderTimeout) else "error"
            self._count(outcome, started)
            for frame in (*last, final):
                yield frame
            return
        except BaseException:  # cancelled (client gone) or a bug: never leave it streaming
            with anyio.CancelScope(shield=True):
                interrupted = ProviderError("the reply was interrupted")
                await self._finalize(
                    turn,
                    text,
                    runner,
                    usage,
                    interrupted,
                    frames,
                    log,
                    frames.tools(),
                    code="interrupted",
                )
            self._count("interrupted", started)
            raise
        final = await self._finalize(turn, text, runner, usage, None, frames, log, [])
        self._count("complete", started)
        yield final

    async def _extra_tools(self) -> dict[str, Tool]:
        found = list(self.tools)
        if self._mcp is not None:
            found += await self._mcp.tools()
        return {tool.name: tool for tool in found}

    def _count(self, outcome: str, started: float) -> None:
        """The turn's outcome and duration in the metrics, by the configured provider."""
        elapsed = time.perf_counter() - started
        metrics.chat_turn(self.settings.assistant_provider, outcome, elapsed)

    async def complete(self, turn: ChatTurn, *, cancel_on_exit: bool = False) -> MessageRead:
        """Run the turn (as :meth:`start`: its frames are stored) to its end and return the
        stored reply. A caller cancelled before the end leaves the turn running unless
        ``cancel_on_exit``.

        Raises:
            ProviderError: the assistant failed (the reply is stored with status ``error``).
        """
        stream = self.start(turn)
        ended = False
        try:
            async for frame in stream:
                if isinstance(frame, DoneFrame):
                    ended = True
                    return frame.message
                if isinstance(frame, ErrorFrame):
                    ended = True
                    raise outcome_error(frame)
        finally:
            if cancel_on_exit and not ended:
                stream.cancel()
        raise ProviderError("the assistant ended without a reply")

    def _check_length(self, text: list[str], delta: str) -> None:
        limit = self.settings.limits.max_assistant_message_chars
        if sum(map(len, text)) + len(delta) > limit:
            raise ProviderError(f"the reply is longer than {limit} characters")

    async def _history(self, turn: ChatTurn) -> list[MessageRead]:
        """The messages before the reply, newest ``chat_history_messages`` within
        ``chat_history_chars``, without replies that never completed."""
        async with self.units.reading(turn.user_id) as conn:
            page = await message_service.page(
                conn,
                turn.user_id,
                turn.conversation.id,
                limit=min(self.settings.chat_history_messages, 100),
                after=None,
                before=turn.reply.seq,
                cursor=None,
            )
        kept = [
            m for m in page.items if not (m.role == "assistant" and m.status in HIDDEN_STATUSES)
        ]
        budget, start = self.settings.chat_history_chars, len(kept)
        while start > 0 and budget - len(kept[start - 1].content) >= 0:
            start -= 1
            budget -= len(kept[start].content)
        history = kept[start:] or kept[-1:]
        while history and history[0].role == "tool":
            history = history[1:]
        return history

    async def _finalize(
        self,
        turn: ChatTurn,
        text: list[str],
        runner: ToolRunner,
        usage: dict[str, Any] | None,
        error: ConvstoreError | None,
        frames: _FrameCounter,
        log: FrameLog | None,
        before: list[Frame],
        code: str | None = None,
    ) -> Frame:
        """Store the reply as it ended; its last frame (``done``, or ``error`` with ``code``,
        by default the error's) and the ``before`` it are stored in the same transaction
        when there is a ``log``."""
        fields: dict[str, Any] = {
            "content": "".join(text),
            "status": "error" if error else "complete",
            "tool_calls": runner.calls or None,
            "tool_results": runner.results or None,
            "usage": usage,
        }
        if error is not None:
            fields["metadata"] = {"error": {"code": error.code, "detail": error.message}}
        lock = log.lock if log is not None else contextlib.nullcontext()
        async with lock, self.units.writing(turn.user_id) as conn:
            message = await message_service.update(
                conn,
                turn.user_id,
                turn.conversation.id,
                turn.reply.id,
                MessageUpdate.model_validate(fields),
                self.settings.limits,
            )
            final: Frame
            if error is None:
                final = DoneFrame(id=frames.next(), message=message)
            else:
                final = ErrorFrame(
                    id=frames.next(),
                    code=code or error.code,
                    detail=error.message,
                    conversation_id=turn.conversation.id,
                    message_id=turn.reply.id,
                    retryable=True,
                )
            if log is not None:
                for frame in (*before, final):
                    log.add(frame)
                await log.write(conn)
        return final


def outcome_error(frame: ErrorFrame) -> ProviderError:
    """The exception a turn's ``error`` frame stands for."""
    cls = ProviderTimeout if frame.code == ProviderTimeout.code else ProviderError
    return cls(frame.detail)


class _FrameCounter:
    """Numbers a turn's frames and turns the tool calls the runner recorded into frames, in
    the order they happened (each call, then its result)."""

    def __init__(self, conversation_id: uuid.UUID, message_id: uuid.UUID, runner: ToolRunner):
        self.conversation_id = conversation_id
        self.message_id = message_id
        self.runner = runner
        self.last = 0
        self.calls = 0
        self.results = 0

    def next(self) -> int:
        self.last += 1
        return self.last

    def tools(self) -> list[Frame]:
        """Frames for the calls and results recorded since the last time."""
        calls, results = self.runner.calls, self.runner.results
        names = {c["id"]: c["name"] for c in calls}
        out: list[Frame] = []
        while self.calls < len(calls) or self.results < len(results):
            if self.results < self.calls and self.results < len(results):
                result = results[self.results]
                self.results += 1
                ok = not result["is_error"]
                call_id = str(result["tool_call_id"])
                out.append(
                    ToolResultFrame(
                        id=self.next(),
                        conversation_id=self.conversation_id,
                        message_id=self.message_id,
                        call_id=call_id,
                        name=names.get(call_id, "invalid_tool_name"),
                        ok=ok,
                        result=result["output"] if ok else None,
                        error=None if ok else tool_error(result["output"]),
                    )
                )
            elif self.calls < len(calls):
                call = calls[self.calls]
                self.calls += 1
                out.append(
                    ToolCallFrame(
                        id=self.next(),
                        conversation_id=self.conversation_id,
                        message_id=self.message_id,
                        call_id=str(call["id"]),
                        name=str(call["name"]),
                        arguments=call["arguments"],
                    )
                )
            else:
                break
        return out


def _zone(conv: ConversationRead, default: str) -> tzinfo:
    name = conv.metadata.get("timezone") if isinstance(conv.metadata, dict) else None
    for candidate in (name, default):
        if isinstance(candidate, str):
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")
