"""A chat WebSocket lives no longer than the session it was opened with, on a real uvicorn server
with the ``websockets`` client: after a logout (this session or every one), a password change, a
deleted account or an expired access token, the next message gets an ``invalid_credentials``
error frame and close code 4401, and nothing of that turn is written. A socket that never signs
in is closed after ``ws_auth_timeout_seconds``; a message above ``max_body_bytes`` closes the
socket with 1009 unread.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from convstore.auth.tokens import LEEWAY_SECONDS
from tests.auth.helpers import access_claims, session_of, sign_hs256
from tests.chat.helpers import (
    WAIT_SECONDS,
    assert_chunks_then_done,
    closed_code,
    receive,
    socket,
    turn_frames,
)
from tests.support.api import PASSWORD, Account, api_settings, client_for, register, running_app
from tests.support.live import serving

AUTH = "/api/v1/auth"
AUTH_TIMEOUT = 0.5
MAX_BODY = 4_096


@dataclass
class Live:
    app: FastAPI
    api: httpx.AsyncClient
    ws_url: str


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[Live]:
    settings = api_settings(
        database_url, ws_auth_timeout_seconds=AUTH_TIMEOUT, max_body_bytes=MAX_BODY
    )
    async with running_app(settings) as app, client_for(app) as api, serving(app) as url:
        yield Live(app, api, url.replace("http://", "ws://") + "/api/v1/chat/ws")


async def sign_in(api: httpx.AsyncClient, who: Account) -> str:
    """A new session of ``who``; its access token."""
    answer = await api.post(f"{AUTH}/login", json={"email": who.email, "password": who.password})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_refused_and_closed(ws: ClientConnection, content: str, conv: str) -> None:
    """The next turn gets one ``invalid_credentials`` frame, then close code 4401."""
    frames = await turn_frames(ws, content=content, conversation_id=conv)
    assert [(f["type"], f["code"], f["retryable"]) for f in frames] == [
        ("error", "invalid_credentials", False)
    ]
    assert await closed_code(ws) == 4401


async def stored(live: Live, who: Account, conv: str) -> tuple[list[str], list[str]]:
    """The user messages of ``conv`` and the titles of the tasks, read through the library (the
    user's tokens may all be revoked by now)."""
    scope = live.app.state.store.for_user(who.id)
    history = await scope.messages.history(conv)
    page = await scope.tasks.list(limit=100)
    return [m.content for m in history if m.role == "user"], [t.title for t in page.items]


async def logout(live: Live, who: Account, token: str) -> None:
    answer = await live.api.post(f"{AUTH}/logout", headers=bearer(token))
    assert answer.status_code == 204, answer.text


async def logout_everywhere(live: Live, who: Account, token: str) -> None:
    other = await sign_in(live.api, who)
    answer = await live.api.post(f"{AUTH}/logout?everywhere=true", headers=bearer(other))
    assert answer.status_code == 204, answer.text


async def change_password(live: Live, who: Account, token: str) -> None:
    other = await sign_in(live.api, who)
    body = {"current_password": PASSWORD, "new_password": "another long passphrase"}
    answer = await live.api.post(f"{AUTH}/password/change", json=body, headers=bearer(other))
    assert answer.status_code == 200, answer.text


async def delete_account(live: Live, who: Account, token: str) -> None:
    answer = await live.api.request(
        "DELETE", f"{AUTH}/me", json={"current_password": PASSWORD}, headers=bearer(token)
    )
    assert answer.status_code == 204, answer.text


Ending = Callable[[Live, Account, str], Awaitable[None]]


@pytest.mark.parametrize(
    "end",
    [logout, logout_everywhere, change_password, delete_account],
    ids=["logout", "logout-everywhere", "password-change", "account-deleted"],
)
async def test_a_socket_closes_at_the_first_message_after_its_session_ended(
    live: Live, end: Ending
) -> None:
    alice = await register(live.api)
    async with socket(live.ws_url, alice.access_token) as ws:
        first = assert_chunks_then_done(await turn_frames(ws, content="add buy milk"))
        conv = first["conversation_id"]
        await end(live, alice, alice.access_token)
        await assert_refused_and_closed(ws, "add pay rent", conv)
    if end is delete_account:
        scope = live.app.state.store.for_user(alice.id)
        assert (await scope.conversations.list()).items == []
        assert (await scope.tasks.list()).items == []
    else:
        assert await stored(live, alice, conv) == (["add buy milk"], ["Buy milk"])


async def test_a_socket_signed_in_by_header_closes_after_a_logout_too(live: Live) -> None:
    alice = await register(live.api)
    async with connect(live.ws_url, additional_headers=alice.headers, close_timeout=2) as ws:
        conv = assert_chunks_then_done(await turn_frames(ws, content="add one"))["conversation_id"]
        await logout(live, alice, alice.access_token)
        await assert_refused_and_closed(ws, "add two", conv)
    assert await stored(live, alice, conv) == (["add one"], ["One"])


async def test_ending_one_session_leaves_the_sockets_of_the_others_open(live: Live) -> None:
    alice = await register(live.api)
    second = await sign_in(live.api, alice)
    async with (
        socket(live.ws_url, alice.access_token) as kept,
        socket(live.ws_url, second) as ended,
    ):
        conv = assert_chunks_then_done(await turn_frames(kept, content="add one"))[
            "conversation_id"
        ]
        await logout(live, alice, second)
        await assert_refused_and_closed(ended, "add two", conv)
        assert_chunks_then_done(await turn_frames(kept, content="add three", conversation_id=conv))
    assert await stored(live, alice, conv) == (["add one", "add three"], ["One", "Three"])


async def test_the_password_change_session_gets_a_working_socket(live: Live) -> None:
    """The new pair of a password change opens sockets again; the old session's stays shut."""
    alice = await register(live.api)
    body = {"current_password": PASSWORD, "new_password": "another long passphrase"}
    changed = await live.api.post(f"{AUTH}/password/change", json=body, headers=alice.headers)
    assert changed.status_code == 200, changed.text
    async with socket(live.ws_url, alice.access_token) as ws:
        frame = await receive(ws)
        assert (frame["type"], frame["code"]) == ("error", "invalid_credentials")
        assert await closed_code(ws) == 4401
    async with socket(live.ws_url, changed.json()["access_token"]) as ws:
        assert_chunks_then_done(await turn_frames(ws, content="add water the plants"))


def expiring_token(who: Account, valid_for: float) -> tuple[str, float]:
    """An access token of ``who``'s session that the server accepts for about ``valid_for`` more
    seconds (its ``exp`` plus the verification leeway); the moment after which it is refused."""
    now = time.time()
    exp = int(now + valid_for - LEEWAY_SECONDS)
    token = sign_hs256(access_claims(who.id, sid=session_of(who.access_token), exp=exp))
    return token, exp + LEEWAY_SECONDS + 1


async def test_a_socket_closes_once_its_access_token_expired_unless_renewed(live: Live) -> None:
    """The same token on two sockets; one sends a fresh token before it expires (a later
    ``auth`` message) and goes on, the other is closed at its first message after expiry."""
    alice, bob = await register(live.api), await register(live.api)
    token, refused_after = expiring_token(alice, valid_for=5)
    async with socket(live.ws_url, token) as renewed, socket(live.ws_url, token) as expired:
        conv = assert_chunks_then_done(await turn_frames(expired, content="add one"))[
            "conversation_id"
        ]
        await renewed.send(json.dumps({"type": "auth", "token": alice.access_token}))
        await asyncio.sleep(max(0.0, refused_after - time.time()))
        await assert_refused_and_closed(expired, "add two", conv)
        assert_chunks_then_done(
            await turn_frames(renewed, content="add three", conversation_id=conv)
        )
        # A socket stays with its user: another user's token is refused, and the socket closes.
        await renewed.send(json.dumps({"type": "auth", "token": bob.access_token}))
        frame = await receive(renewed)
        assert (frame["type"], frame["code"]) == ("error", "invalid_credentials")
        assert await closed_code(renewed) == 4401
    assert await stored(live, alice, conv) == (["add one", "add three"], ["One", "Three"])


async def test_a_socket_that_never_signs_in_is_closed_after_the_auth_timeout(live: Live) -> None:
    async with socket(live.ws_url) as ws:
        async with asyncio.timeout(WAIT_SECONDS):
            frame = await receive(ws)
        assert (frame["type"], frame["code"], frame["retryable"]) == (
            "error",
            "invalid_credentials",
            False,
        )
        assert f"within {AUTH_TIMEOUT:g} s" in frame["detail"]
        assert await closed_code(ws) == 4401


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "first-message"])
@pytest.mark.parametrize("kind", ["text", "binary"])
async def test_a_message_above_the_body_limit_closes_the_socket_unread(
    live: Live, signed_in: bool, kind: str
) -> None:
    alice = await register(live.api)
    async with socket(live.ws_url, alice.access_token if signed_in else None) as ws:
        if signed_in:
            first = assert_chunks_then_done(await turn_frames(ws, content="add one"))
        # A valid message — it would start a turn if it were read.
        message = {"type": "message", "content": "add " + "x" * MAX_BODY}
        if not signed_in:
            message = {"type": "auth", "token": alice.access_token + " " * MAX_BODY}
        raw = json.dumps(message)
        assert len(raw.encode()) > MAX_BODY
        await ws.send(raw if kind == "text" else raw.encode())
        frame = await receive(ws)
        assert (frame["type"], frame["code"], frame["retryable"]) == (
            "error",
            "message_too_large",
            False,
        )
        assert await closed_code(ws) == 1009
    listed = await live.app.state.store.for_user(alice.id).conversations.list(limit=100)
    assert [str(c.id) for c in listed.items] == ([first["conversation_id"]] if signed_in else [])


async def test_a_message_at_the_body_limit_is_a_turn(live: Live) -> None:
    alice = await register(live.api)
    async with socket(live.ws_url, alice.access_token) as ws:
        envelope = len(json.dumps({"type": "message", "content": "hello "}).encode())
        content = "hello " + "é" * ((MAX_BODY - envelope) // 2)  # two bytes each in UTF-8
        raw = json.dumps({"type": "message", "content": content}, ensure_ascii=False)
        assert MAX_BODY - 1 <= len(raw.encode()) <= MAX_BODY
        assert_chunks_then_done(await turn_frames_raw(ws, raw))


async def turn_frames_raw(ws: ClientConnection, raw: str) -> list[dict[str, object]]:
    await ws.send(raw)
    frames = [await receive(ws)]
    while frames[-1]["type"] == "chunk":
        frames.append(await receive(ws))
    return frames
