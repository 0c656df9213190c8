"""``/api/v1/chat``: a chat turn as JSON, as Server-Sent Events, or over a WebSocket.

Frames (SSE events and WebSocket messages) are the ``chunk``, ``done`` and ``error`` schemas of
:mod:`convstore.assistant.schemas`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response, WebSocket, WebSocketDisconnect, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from convstore.assistant.schemas import ErrorFrame, Frame
from convstore.assistant.service import ChatService, ChatTurn, TurnStream
from convstore.auth.service import Auth
from convstore.conversations.schemas import MessageRead
from convstore.errors import ConvstoreError, InvalidCredentials, InvalidInput
from convstore.http.deps import (
    API_PREFIX,
    AuthDep,
    CurrentUser,
    RateLimitsDep,
    StoreDep,
    authenticate,
    get_limits,
    get_store,
)
from convstore.http.errors import ERROR_RESPONSES, Problem
from convstore.http.ratelimit import RateLimits
from convstore.http.routing import ApiRoute
from convstore.kit.jsoninput import JSONTooDeep, loads
from convstore.kit.schemas import SafeText
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


def _chat(request: Request | WebSocket) -> ChatService:
    state = request.app.state
    if state.chat is None:
        state.chat = state.chat_factory()
    chat: ChatService = state.chat
    return chat


async def _answer(
    request: Request, turn: ChatTurn, stream: bool, response: Response
) -> MessageRead | StreamingResponse:
    chat = _chat(request)
    if stream:
        return StreamingResponse(
            _events(chat.start(turn), chat.settings.chat_cancel_on_disconnect),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    reply = await chat.complete(turn)
    response.status_code = status.HTTP_201_CREATED
    response.headers["Location"] = (
        f"{API_PREFIX}/conversations/{turn.conversation.id}/messages/{reply.id}"
    )
    return reply


async def _events(stream: TurnStream, cancel_on_disconnect: bool) -> AsyncIterator[str]:
    """The turn's frames as Server-Sent Events; a client that goes away ends the turn when
    ``cancel_on_disconnect`` (the turn runs on its own either way, see ChatService.start)."""
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
) -> Any:
    """Store your message, let the assistant answer (using your tasks), store its reply."""
    await get_limits(request).chat_turn(user.id)
    async with get_store(request).writing(user.id) as conn:
        turn = await _chat(request).begin(conn, user.id, conversation_id, body.content)
    return await _answer(request, turn, body.stream, response)


@router.post(
    "/messages",
    summary="Start a conversation with a message",
    response_model=MessageRead,
    status_code=status.HTTP_201_CREATED,
    responses=_TURN_RESPONSES,
)
async def chat_new(
    body: ChatRequest, user: CurrentUser, request: Request, response: Response
) -> Any:
    """Like chatting in a conversation, in a new one titled from your message."""
    await get_limits(request).chat_turn(user.id)
    async with get_store(request).writing(user.id) as conn:
        turn = await _chat(request).begin(conn, user.id, None, body.content)
    return await _answer(request, turn, body.stream, response)


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
    body: RetryRequest | None = None,
) -> Any:
    """Answer your last message again after a reply that failed (422 if there is none)."""
    await get_limits(request).chat_turn(user.id)
    async with get_store(request).writing(user.id) as conn:
        turn = await _chat(request).retry(conn, user.id, conversation_id)
    return await _answer(request, turn, bool(body and body.stream), response)


@router.websocket("/ws")
async def chat_socket(
    websocket: WebSocket, store: StoreDep, auth: AuthDep, limits: RateLimitsDep
) -> None:
    """Authenticate with the first message `{"type": "auth", "token": …}` (or an
    `Authorization` header) within `CONVSTORE_WS_AUTH_TIMEOUT_SECONDS`, then send
    `{"type": "message", "content": …, "conversation_id"?: …}`; each answer streams as `chunk`
    frames ending in `done`/`error`. Every frame is checked like an HTTP request (the token,
    its session, the account): once the session has ended the socket closes with 4401. A
    later `auth` message renews the token."""
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
    """Answer one frame: a turn streamed as frames, or one error frame (the socket stays open).

    Raises:
        InvalidCredentials: the session has ended; nothing was written.
    """
    try:
        turn = await _begin_socket_turn(websocket, session, limits)
    except InvalidCredentials:
        raise
    except (ValidationError, ConvstoreError) as exc:
        await websocket.send_text(_error_frame(exc).model_dump_json())
        return
    if turn is None:
        return
    async with contextlib.aclosing(_chat(websocket).run(turn)) as frames:
        async for frame in frames:
            await websocket.send_text(frame.model_dump_json())


async def _begin_socket_turn(
    websocket: WebSocket, session: _SocketSession, limits: RateLimits
) -> ChatTurn | None:
    """Read a frame and, once the session is checked, start the turn it asks for (None: the
    frame renewed the token). Each turn counts against the user's chat budget too."""
    try:
        raw = await _receive_json(websocket)
    except InvalidInput:
        await session.admit(limits)
        raise
    if _is_auth(raw):
        await session.admit(limits, renewal=_token_of(raw))
        return None
    await session.admit(limits)
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
