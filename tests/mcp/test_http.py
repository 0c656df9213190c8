"""MCP over Streamable HTTP inside the API: a real uvicorn server, the official client, bearer
tokens of registered users, on each backend."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import pytest
from fastapi import FastAPI
from mcp.client.streamable_http import streamable_http_client

from convstore.http.deps import get_auth, get_limits, get_store
from convstore.mcp.http import McpHttpApp, mcp_http_app, mount
from mcp import Client, MCPError
from tests.mcp.helpers import (
    PROTOCOL,
    STEP_TIMEOUT,
    assert_lists_the_six_tools,
    call,
    error_text,
    exercise_tools,
    structured,
)
from tests.support.api import Account, api_settings, client_for, register, running_app
from tests.support.live import serving

MODES = list(PROTOCOL)
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@dataclass
class Live:
    """The API with MCP mounted at /mcp, served by uvicorn on 127.0.0.1."""

    url: str
    api: httpx.AsyncClient

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"


def install_mcp(app: FastAPI) -> McpHttpApp:
    """Mount MCP on ``app`` the way ``create_app`` does (its lifespan is entered separately)."""
    mcp_app = mcp_http_app(get_store, get_auth, get_limits=get_limits)
    mount(app, mcp_app)
    return mcp_app


@contextlib.asynccontextmanager
async def live_api(database_url: str) -> AsyncIterator[Live]:
    """The API on ``database_url`` with MCP, served live."""
    async with running_app(api_settings(database_url)) as app:
        mcp_app = install_mcp(app)
        async with mcp_app.lifespan(), serving(app) as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as api:
                yield Live(url, api)


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[Live]:
    # Set up and torn down in different tasks, as pytest-asyncio does: lifespan() allows it.
    async with live_api(database_url) as served:
        yield served


@contextlib.asynccontextmanager
async def connect(live: Live, token: str | None, mode: str = "auto") -> AsyncIterator[Client]:
    """The official client on /mcp, sending ``token`` as a bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=10) as http:
        transport = streamable_http_client(live.mcp_url, http_client=http)
        async with Client(transport, mode=mode, read_timeout_seconds=10) as client:
            yield client


@pytest.mark.parametrize("mode", MODES)
async def test_the_tools_work_over_http(live: Live, mode: str) -> None:
    alice = await register(live.api)
    async with asyncio.timeout(STEP_TIMEOUT), connect(live, alice.access_token, mode) as client:
        assert client.protocol_version == PROTOCOL[mode]
        await assert_lists_the_six_tools(client)
        kept = await exercise_tools(client)
    listed = await live.api.get("/api/v1/tasks", headers=alice.headers)
    assert [t["title"] for t in listed.json()["items"]] == [kept]


@pytest.mark.parametrize("mode", MODES)
async def test_a_user_cannot_reach_another_users_task(live: Live, mode: str) -> None:
    alice, bob = await register(live.api), await register(live.api)
    async with asyncio.timeout(STEP_TIMEOUT):
        async with connect(live, alice.access_token, mode) as as_alice:
            task = structured(await call(as_alice, "add_task", {"title": "alice's secret"}))
        async with connect(live, bob.access_token, mode) as as_bob:
            ref = {"task_id": task["id"]}
            for name, arguments in [
                ("complete_task", ref),
                ("reopen_task", ref),
                ("update_task", {**ref, "title": "bob was here"}),
                ("delete_task", ref),
            ]:
                assert "not found" in error_text(await call(as_bob, name, arguments)), name
            seen = structured(await call(as_bob, "list_tasks", {"status": "all"}))["tasks"]
            assert seen == []
            own = structured(await call(as_bob, "add_task", {"title": "bob's"}))
        async with connect(live, alice.access_token, mode) as as_alice:
            mine = structured(await call(as_alice, "list_tasks", {"status": "all"}))["tasks"]
    assert [(t["id"], t["title"], t["completed"]) for t in mine] == [
        (task["id"], "alice's secret", False)
    ]
    assert own["id"] != task["id"]


async def test_no_token_is_401(live: Live) -> None:
    answer = await live.api.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["code"] == "invalid_credentials"


@pytest.mark.parametrize("token", ["not-a-token", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"])
async def test_a_bad_token_is_401(live: Live, token: str) -> None:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    answer = await live.api.post("/mcp", json=INITIALIZE, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert answer.json()["status"] == 401


@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_the_official_client_fails_without_a_valid_token(
    live: Live, token: str | None
) -> None:
    # The SDK reports the 401 as an MCPError ("Server returned an error response"), raised out
    # of the transport's task group, so wrapped in an exception group.
    with pytest.RaisesGroup(MCPError, allow_unwrapped=True, flatten_subgroups=True):
        async with asyncio.timeout(STEP_TIMEOUT), connect(live, token):
            pass


async def test_a_signed_out_token_is_refused(live: Live) -> None:
    alice = await register(live.api)
    async with asyncio.timeout(STEP_TIMEOUT), connect(live, alice.access_token) as client:
        await call(client, "list_tasks", {})
    out = await live.api.post("/api/v1/auth/logout", headers=alice.headers)
    assert out.status_code == 204
    headers = {**MCP_HEADERS, **alice.headers}
    answer = await live.api.post("/mcp", json=INITIALIZE, headers=headers)
    assert answer.status_code == 401


# In-process (ASGI transport) checks of the endpoint's own behaviour.


async def _initialize(app: Any, headers: dict[str, str], host: str = "127.0.0.1") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
        return await c.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})


async def test_host_checks_when_enabled(app: FastAPI, alice: Account) -> None:
    mcp_app = McpHttpApp(
        lambda _: app.state.store, lambda _: app.state.auth, allowed_hosts=["api.example.com"]
    )
    routed = FastAPI()
    mount(routed, mcp_app)
    async with mcp_app.lifespan():
        assert (await _initialize(routed, alice.headers, "evil.example")).status_code == 421
        assert (await _initialize(routed, alice.headers, "api.example.com")).status_code == 200
        assert (await _initialize(routed, alice.headers, "localhost:8000")).status_code == 200


async def test_answers_503_outside_its_lifespan(app: FastAPI, alice: Account) -> None:
    mcp_app = McpHttpApp(lambda _: app.state.store, lambda _: app.state.auth)
    routed = FastAPI()
    mount(routed, mcp_app)
    answer = await _initialize(routed, alice.headers)
    assert answer.status_code == 503


async def test_only_post_is_served(app: FastAPI, alice: Account) -> None:
    """Stateless: no session to DELETE, no stream to GET (it would stay open, empty)."""
    mcp_app = McpHttpApp(lambda _: app.state.store, lambda _: app.state.auth)
    routed = FastAPI()
    mount(routed, mcp_app)
    async with (
        mcp_app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=routed), base_url="http://t") as c,
    ):
        for method in ("GET", "DELETE"):
            answer = await c.request(method, "/mcp", headers={**MCP_HEADERS, **alice.headers})
            assert answer.status_code == 405, method
            assert answer.headers["allow"] == "POST"
        assert (await c.get("/mcp")).status_code == 401


async def test_requests_count_against_the_user_rate_limit(database_url: str) -> None:
    settings = api_settings(database_url, rate_limit_user="3/minute")
    async with running_app(settings) as app:
        mcp_app = install_mcp(app)
        async with mcp_app.lifespan(), client_for(app) as api:
            alice = await register(api)
            statuses = [(await _initialize(app, alice.headers)).status_code for _ in range(4)]
            refused = await _initialize(app, alice.headers)
    assert statuses == [200, 200, 200, 429]
    assert int(refused.headers["retry-after"]) >= 1


async def test_each_call_acts_for_its_own_token(live: Live) -> None:
    """Concurrent requests of two users never see each other's identity."""
    alice, bob = await register(live.api), await register(live.api)

    async def add_many(account: Account) -> set[str]:
        async with connect(live, account.access_token, "legacy") as client:
            titles = [f"{account.email} {i} {uuid.uuid4().hex[:4]}" for i in range(5)]
            await asyncio.gather(*(call(client, "add_task", {"title": t}) for t in titles))
            listed = structured(await call(client, "list_tasks", {"status": "all"}))["tasks"]
            return {t["title"] for t in listed}

    async with asyncio.timeout(STEP_TIMEOUT):
        seen_by_alice, seen_by_bob = await asyncio.gather(add_many(alice), add_many(bob))
    assert len(seen_by_alice) == len(seen_by_bob) == 5
    assert all(t.startswith(alice.email) for t in seen_by_alice)
    assert all(t.startswith(bob.email) for t in seen_by_bob)


async def test_deeply_nested_arguments_are_refused_cleanly(live: Live) -> None:
    """Arguments nested past 64 levels are a tool error naming the limit (the session goes
    on); a request too deep for the SDK's own JSON parser is its parse error, not a 500."""
    alice = await register(live.api)
    deep: Any = "x"
    for _ in range(100):
        deep = [deep]
    async with asyncio.timeout(STEP_TIMEOUT), connect(live, alice.access_token) as client:
        refused = await call(client, "add_task", {"title": "deep", "tags": deep})
        assert "nested deeper than 64 levels" in error_text(refused)
        assert structured(await call(client, "list_tasks", {"status": "all"}))["tasks"] == []
    body = (
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add_task", '
        b'"arguments": {"title": "x", "tags": ' + b"[" * 3_000 + b"]" * 3_000 + b"}}}"
    )
    headers = {**MCP_HEADERS, **alice.headers, "content-type": "application/json"}
    answer = await live.api.post("/mcp", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == -32700  # JSON-RPC parse error
    listed = await live.api.get("/api/v1/tasks", headers=alice.headers)
    assert listed.json()["items"] == []
