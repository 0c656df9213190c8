"""``/api/v1/chat``: a chat turn as JSON, as Server-Sent Events, or over a WebSocket.

Frames (SSE events and WebSocket messages) are the ``chunk``, ``tool_call``, ``tool_result``,
``done`` and ``error`` schemas of :mod:`convstore.assistant.schemas`, numbered by ``id``; a
turn's frames are stored, so a stream can be resumed (``GET …/stream`` with ``Last-Event-ID``,
or a ``resume`` socket frame) on any server, and a turn cancelled (``POST …/cancel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Header,
    Query,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
    status,
)
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from convstore.assistant.protocol import ProviderError
from convstore.assistant.schemas import DoneFrame, ErrorFrame, Frame
from convstore.assistant.service import ChatService, ChatTurn, TurnStream, outcome_error
from convstore.assistant.streams import check_followable, follow, request_cancel
from convstore.auth.service import Auth
from convstore.conversations.schemas import MessageRead
from convstore.conversations.service import message as message_service
from convstore.errors import ConvstoreError, InvalidCredentials, InvalidInput, NotFound
from convstore.http.deps import (
    API_PREFIX,
    AuthDep,
    CurrentUser,
    IdempotencyDep,
    RateLimitsDep,
    StoreDep,
    authenticate,
    get_limits,
    get_store,
)
from convstore.http.errors import CONFLICT_RESPONSES, ERROR_RESPONSES, Problem
from convstore.http.idempotency import Replay, replay_headers
from convstore.http.ratelimit import RateLimits
from convstore.http.routing import ApiRoute
from convstore.kit.jsoninput import JSONTooDeep, loads
from convstore.kit.schemas import ReadSchema, SafeText
from convstore.store import Store

router = APIRouter(prefix="/chat", tags=["chat"], responses=ERROR_RESPONSES, route_class=ApiRoute)

_TURN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "With `stream: true`: Server-Sent Events `chunk`… then `done` or "
        "`error`, each `data:` a JSON frame.",
        "content": {"text/event-stream": {}},
    },
    502: {
        "model": Problem,
        "description": "The model provider failed; the reply is stored "
        "with status `error` and can be retried.",
    },
    504: {"model": Problem, "description": "The model provider timed out (as 502)."},
    **CONFLICT_RESPONSES,
}


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: Annotated[SafeText, Field(min_length=1, description="The user's message.")]
    stream: bool = Field(default=False, description="Answer as Server-Sent Events.")


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stream: bool = False


class SocketMessage(BaseModel):
    """A WebSocket request: a message for a conversation (or a new one)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["message"] = "message"
    content: Annotated[SafeText, Field(min_length=1)]
    conversation_id: uuid.UUID | None = None


class SocketResume(BaseModel):
    """Receive a reply's frames after ``last_id`` (from the store), then the rest live."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["resume"]
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    last_id: int = Field(default=0, ge=0)


class SocketCancel(BaseModel):
    """Stop the turn writing this reply (wherever it runs)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["cancel"]
    conversation_id: uuid.UUID
    message_id: uuid.UUID


def _chat(request: Request | WebSocket) -> ChatService:
    state = request.app.state
    if state.chat is None:
        state.chat = state.chat_factory()
    chat: ChatService = state.chat
    return chat


class TurnRef(ReadSchema):
    """What an ``Idempotency-Key`` of a chat turn keeps: the turn's reply."""

    conversation_id: uuid.UUID
    message_id: uuid.UUID


def _message_url(conversation_id: uuid.UUID, message_id: uuid.UUID) -> str:
    return f"{API_PREFIX}/conversations/{conversation_id}/messages/{message_id}"


def _sse_response(frames: AsyncIterator[str], headers: dict[str, str] | None = None) -> Any:
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
    )


async def _begin(
    request: Request,
    user_id: uuid.UUID,
    idem: IdempotencyDep,
    body: BaseModel,
    stream: bool,
    start: Any,
) -> ChatTurn | Replay:
    """Claim the request's ``Idempotency-Key`` and begin the turn in one transaction (the
    key then names the turn); a key already used gives its :class:`Replay`."""
    await get_limits(request).chat_turn(user_id)
    try:
        async with get_store(request).writing(user_id) as conn:
            await idem.claim(conn, user_id, body)
            turn: ChatTurn = await start(conn)
            ref = TurnRef(conversation_id=turn.conversation.id, message_id=turn.reply.id)
            code = status.HTTP_200_OK if stream else status.HTTP_201_CREATED
            await idem.record(code, ref, _message_url(ref.conversation_id, ref.message_id))
    except Replay as replay:
        return replay
    return turn


async def _answer(
    request: Request,
    user_id: uuid.UUID,
    begun: ChatTurn | Replay,
    stream: bool,
    response: Response,
) -> Any:
    chat = _chat(request)
    cancel = chat.settings.chat_cancel_on_disconnect
    if isinstance(begun, Replay):
        return await _replayed(request, user_id, begun, stream)
    turn = begun
    if stream:
        return _sse_response(_events(chat.start(turn), cancel))
    reply = await chat.complete(turn, cancel_on_exit=cancel)
    response.status_code = status.HTTP_201_CREATED
    response.headers["Location"] = _message_url(turn.conversation.id, reply.id)
    return reply


async def _replayed(request: Request, user_id: uuid.UUID, replay: Replay, stream: bool) -> Any:
    """The answer to a repeated turn request: the first turn's frames (from the store) or its
    reply once it ended, never a second turn."""
    ref = TurnRef.model_validate_json(replay.body)
    chat = _chat(request)
    headers = replay_headers(replay)
    if stream:
        await check_followable(chat.units, user_id, ref.conversation_id, ref.message_id)
        return _sse_response(_followed(chat, user_id, ref.message_id, 0), headers)
    try:
        await check_followable(chat.units, user_id, ref.conversation_id, ref.message_id)
    except NotFound:
        final: Frame | None = None  # frames pruned: the stored reply says how it ended
    else:
        final = None
        async for frame in _follow(chat, user_id, ref.message_id, 0):
            final = frame
    if isinstance(final, ErrorFrame):
        raise outcome_error(final)
    if isinstance(final, DoneFrame):
        reply = final.message
    else:
        async with chat.units.reading(user_id) as conn:
            reply = await message_service.get(conn, user_id, ref.conversation_id, ref.message_id)
        if reply.status != "complete":
            raise ProviderError("the assistant provider failed; retry")
    return Response(
        reply.model_dump_json(),
        status_code=status.HTTP_201_CREATED,
        media_type="application/json",
        headers=headers,
    )


def _follow(
    chat: ChatService, user_id: uuid.UUID, message_id: uuid.UUID, after: int
) -> AsyncGenerator[Frame, None]:
    settings = chat.settings
    return follow(
        chat.units,
        user_id,
        message_id,
        after,
        poll_seconds=settings.chat_follow_poll_seconds,
        stall_seconds=settings.chat_turn_timeout_seconds + 30,
    )


async def _followed(
    chat: ChatService, user_id: uuid.UUID, message_id: uuid.UUID, after: int
) -> AsyncIterator[str]:
    async with contextlib.aclosing(_follow(chat, user_id, message_id, after)) as frames:
        async for frame in frames:
            yield sse(frame)


async def _events(stream: TurnStream, cancel_on_disconnect: bool) -> AsyncIterator[str]:
    """The turn's frames as Server-Sent Events; a client that goes away ends the turn only
    when ``cancel_on_disconnect`` (the turn runs on its own, see ChatService.start)."""
    try:
        async for frame in stream:
            yield sse(frame)
    finally:
        if cancel_on_disconnect:
            stream.cancel()


@router.post(
    "/conversations/{conversation_id}/messages",
    summary="Chat in a conversation",
    response_model=MessageRead,
    status_code=status.HTTP_201_CREATED,
    responses=_TURN_RESPONSES,
)
async def chat_in_conversation(
    conversation_id: uuid.UUID,
    body: ChatRequest,
    user: CurrentUser,
    request: Request,
    response: Response,
    idem: IdempotencyDep,
) -> Any:
    """Store your message, let the assistant answer (using your tasks), store its reply.
    With an `Idempotency-Key`, a repeat gets the first turn's answer (its frames, when
    streamed), never a second turn."""

    def start(conn: Any) -> Any:
        return _chat(request).begin(conn, user.id, conversation_id, body.content)

    begun = await _begin(request, user.id, idem, body, body.stream, start)
    return await _answer(request, user.id, begun, body.stream, response)


@router.post(
    "/messages",
    summary="Start a conversation with a message",
    response_model=MessageRead,
    status_code=status.HTTP_201_CREATED,
    responses=_TURN_RESPONSES,
)
async def chat_new(
    body: ChatRequest,
    user: CurrentUser,
    request: Request,
    response: Response,
    idem: IdempotencyDep,
) -> Any:
    """Like chatting in a conversation, in a new one titled from your message."""

    def start(conn: Any) -> Any:
        return _chat(request).begin(conn, user.id, None, body.content)

    begun = await _begin(request, user.id, idem, body, body.stream, start)
    return await _answer(request, user.id, begun, body.stream, response)


@router.post(
    "/conversations/{conversation_id}/retry",
    summary="Retry a failed reply",
    response_model=MessageRead,
    status_code=status.HTTP_201_CREATED,
    responses=_TURN_RESPONSES,
)
async def chat_retry(
    conversation_id: uuid.UUID,
    user: CurrentUser,
    request: Request,
    response: Response,
    idem: IdempotencyDep,
    body: RetryRequest | None = None,
) -> Any:
    """Answer your last message again after a reply that failed (422 if there is none)."""
    retry = body or RetryRequest()

    def start(conn: Any) -> Any:
        return _chat(request).retry(conn, user.id, conversation_id)

    begun = await _begin(request, user.id, idem, retry, retry.stream, start)
    return await _answer(request, user.id, begun, retry.stream, response)


@router.get(
    "/conversations/{conversation_id}/messages/{message_id}/stream",
    summary="Resume or follow a reply's stream",
    responses={
        200: {
            "description": "Server-Sent Events: the turn's frames after `Last-Event-ID` "
            "(or `after`), then the rest as they come, up to `done` or `error`.",
            "content": {"text/event-stream": {}},
        }
    },
)
async def chat_stream(
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    user: CurrentUser,
    request: Request,
    last_event_id: Annotated[
        str | None,
        Header(description="The id of the last frame received; the stream goes on after it."),
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, description="As `Last-Event-ID` (the header wins).")
    ] = None,
) -> Any:
    """The frames of a reply's turn, from the store: a client that lost its stream (or a
    second tab) receives exactly the frames after the last one it has, then the rest live,
    whichever server runs the turn. 404 for a reply whose frames are no longer kept."""
    start = after or 0
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise InvalidInput("must be a frame id (0, 1, 2…)", field="Last-Event-ID")
        start = int(last_event_id)
    chat = _chat(request)
    await check_followable(chat.units, user.id, conversation_id, message_id)
    return _sse_response(_followed(chat, user.id, message_id, start))


class CancelRequested(BaseModel):
    """The stop request is stored; the turn ends at its next flush."""

    conversation_id: uuid.UUID
    message_id: uuid.UUID
    status: Literal["cancelling"] = "cancelling"


@router.post(
    "/conversations/{conversation_id}/messages/{message_id}/cancel",
    summary="Stop a reply being written",
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"model": Problem, "description": "The reply is not being written."}},
)
async def chat_cancel(
    conversation_id: uuid.UUID, message_id: uuid.UUID, user: CurrentUser, request: Request
) -> CancelRequested:
    """Ask the turn writing this reply to stop, on whichever server it runs: within
    `CONVSTORE_CHAT_FRAMES_FLUSH_SECONDS` it ends, its reply stored as interrupted and its
    stream ending with an `error` frame (`interrupted`)."""
    await request_cancel(_chat(request).units, user.id, conversation_id, message_id)
    return CancelRequested(conversation_id=conversation_id, message_id=message_id)


@router.websocket("/ws")
async def chat_socket(
    websocket: WebSocket, store: StoreDep, auth: AuthDep, limits: RateLimitsDep
) -> None:
    """Authenticate with the first message `{"type": "auth", "token": …}` (or an
    `Authorization` header) within `CONVSTORE_WS_AUTH_TIMEOUT_SECONDS`, then send
    `{"type": "message", "content": …, "conversation_id"?: …}`; each answer streams as
    `chunk`/`tool_call`/`tool_result` frames ending in `done`/`error`. `{"type": "resume",
    "conversation_id", "message_id", "last_id"}` sends a reply's frames after `last_id` and
    the rest live; `{"type": "cancel", "conversation_id", "message_id"}` stops a turn.
    Every frame is checked like an HTTP request (the token, its session, the account): once
    the session has ended the socket closes with 4401. A later `auth` message renews the
    token."""
    await websocket.accept()
    try:
        session = await _open_session(websocket, store, auth)
        while True:
            await _socket_turn(websocket, session, limits)
    except WebSocketDisconnect:
        return
    except InvalidCredentials as exc:
        await websocket.send_text(_error_frame(exc).model_dump_json())
        await websocket.close(code=4401, reason="unauthorized")


@dataclass
class _SocketSession:
    """Who a socket acts for and the token it proved it with.

    The token is checked again before each frame is acted on — signature, expiry, its session
    (refresh-token family) not revoked, the account active — exactly as for an HTTP request:
    a socket must not outlive a logout, a password change or its token.
    """

    store: Store
    auth: Auth
    token: str
    user_id: uuid.UUID

    async def admit(self, limits: RateLimits, renewal: str | None = None) -> None:
        """Check the session again (or switch to ``renewal``, a fresh token of the same user)
        and count the frame against the user's rate limit.

        Raises:
            InvalidCredentials: the session has ended, or ``renewal`` is not a valid token of
                this user (the socket is closed).
            RateLimited: over the user's limit (an error frame; the socket stays open).
        """
        token = self.token if renewal is None else renewal
        principal = await authenticate(self.store, self.auth, token)
        if principal.user.id != self.user_id:
            raise InvalidCredentials("a socket stays with the user who opened it")
        self.token = token
        await limits.hit(limits.user, "user", str(self.user_id))


async def _open_session(websocket: WebSocket, store: Store, auth: Auth) -> _SocketSession:
    """The socket's session, from its ``Authorization`` header or its first message.

    Raises:
        InvalidCredentials: no valid token, or no first message within the auth timeout.
    """
    header = websocket.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else None
    if token is None:
        timeout = store.settings.ws_auth_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                first = await _receive_json(websocket)
        except TimeoutError:
            raise InvalidCredentials(f"no auth message within {timeout:g} s") from None
        except InvalidInput:
            first = None
        if not _is_auth(first):
            raise InvalidCredentials('send {"type": "auth", "token": …} first')
        token = _token_of(first)
    principal = await authenticate(store, auth, token)
    return _SocketSession(store, auth, token, principal.user.id)


async def _socket_turn(websocket: WebSocket, session: _SocketSession, limits: RateLimits) -> None:
    """Answer one frame: a turn streamed as frames, a resumed stream, or one error frame (the
    socket stays open).

    Raises:
        InvalidCredentials: the session has ended; nothing was written.
        WebSocketDisconnect: the client went away (a running turn goes on unless
            ``CONVSTORE_CHAT_CANCEL_ON_DISCONNECT``).
    """
    chat = _chat(websocket)
    try:
        asked = await _begin_socket_turn(websocket, session, limits)
        if isinstance(asked, SocketResume):
            await check_followable(
                chat.units, session.user_id, asked.conversation_id, asked.message_id
            )
        elif isinstance(asked, SocketCancel):
            await request_cancel(
                chat.units, session.user_id, asked.conversation_id, asked.message_id
            )
    except InvalidCredentials:
        raise
    except (ValidationError, ConvstoreError) as exc:
        await websocket.send_text(_error_frame(exc).model_dump_json())
        return
    if asked is None or isinstance(asked, SocketCancel):
        return
    if isinstance(asked, SocketResume):
        frames = _follow(chat, session.user_id, asked.message_id, asked.last_id)
        async with contextlib.aclosing(frames):
            async for frame in frames:
                await websocket.send_text(frame.model_dump_json())
        return
    stream = chat.start(asked)
    try:
        async for frame in stream:
            await websocket.send_text(frame.model_dump_json())
    except BaseException:
        if chat.settings.chat_cancel_on_disconnect:
            stream.cancel()
        raise


async def _begin_socket_turn(
    websocket: WebSocket, session: _SocketSession, limits: RateLimits
) -> ChatTurn | SocketResume | SocketCancel | None:
    """Read a frame and, once the session is checked, start the turn it asks for (None: the
    frame renewed the token; a resume or cancel frame is returned as read). Each turn counts
    against the user's chat budget too."""
    try:
        raw = await _receive_json(websocket)
    except InvalidInput:
        await session.admit(limits)
        raise
    if _is_auth(raw):
        await session.admit(limits, renewal=_token_of(raw))
        return None
    await session.admit(limits)
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "resume":
        return SocketResume.model_validate(raw)
    if kind == "cancel":
        return SocketCancel.model_validate(raw)
    request = SocketMessage.model_validate(raw)
    await limits.chat_turn(session.user_id)
    async with session.store.writing(session.user_id) as conn:
        return await _chat(websocket).begin(
            conn, session.user_id, request.conversation_id, request.content
        )


def _is_auth(frame: Any) -> bool:
    return isinstance(frame, dict) and frame.get("type") == "auth"


def _token_of(frame: dict[str, Any]) -> str:
    return str(frame.get("token") or "")


async def _receive_json(websocket: WebSocket) -> Any:
    """The next frame (text or binary) as JSON.

    Raises:
        WebSocketDisconnect: the client went away.
        InvalidInput: the frame is not JSON (the socket stays usable).
    """
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    data = message.get("text")
    try:
        return loads(data if data is not None else message.get("bytes") or b"")
    except JSONTooDeep as exc:
        raise InvalidInput(f"the frame is {exc.msg}", field="frame") from None
    except ValueError:
        raise InvalidInput("a frame must be a JSON object", field="frame") from None


def sse(frame: Frame) -> str:
    """One frame as a Server-Sent Event: its ``id``, its type as ``event``, its JSON."""
    head = f"id: {frame.id}\n" if frame.id is not None else ""
    return f"{head}event: {frame.type}\ndata: {frame.model_dump_json()}\n\n"


def _error_frame(exc: Exception) -> ErrorFrame:
    if isinstance(exc, ValidationError):
        fields = ", ".join(".".join(map(str, e["loc"])) or "message" for e in exc.errors())
        return ErrorFrame(
            code="invalid_input", detail=f"invalid message: {fields}", retryable=False
        )
    assert isinstance(exc, ConvstoreError)
    retryable = exc.status_code >= 500 or exc.status_code == 429  # 429: after a wait
    return ErrorFrame(code=exc.code, detail=exc.message, retryable=retryable)
