"""MCP over stdio: a real ``convstore mcp`` process, driven by the official client, on each
backend."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

import convstore
from mcp import Client, StdioServerParameters, stdio_client
from tests.conftest import fast_settings
from tests.mcp.helpers import (
    PROTOCOL,
    STEP_TIMEOUT,
    assert_lists_the_six_tools,
    call,
    exercise_tools,
    structured,
)
from tests.support.databases import fresh_database
from tests.test_cli import CONVSTORE


def server_params(database_url: str, email: str, cwd: Path) -> StdioServerParameters:
    """Launch ``convstore mcp --user EMAIL`` on ``database_url`` (only that in the env)."""
    env = {"CONVSTORE_DATABASE_URL": database_url, "CONVSTORE_ENV": "test"}
    return StdioServerParameters(command=CONVSTORE, args=["mcp", "--user", email], env=env, cwd=cwd)


async def serve_and_exercise(database_url: str, tmp_path: Path, *, mode: str) -> str:
    """Run the whole tool round over stdio; the server's stderr, for the caller to inspect."""
    email = f"mcp-{uuid.uuid4().hex[:8]}@example.com"
    errlog = tmp_path / "stderr.log"
    with errlog.open("w") as err:
        transport = stdio_client(server_params(database_url, email, tmp_path), errlog=err)
        async with asyncio.timeout(STEP_TIMEOUT), Client(transport, mode=mode) as client:
            assert client.server_info is not None
            assert client.server_info.name == "convstore"
            assert client.protocol_version == PROTOCOL[mode]
            await assert_lists_the_six_tools(client)
            kept = await exercise_tools(client)
    async with convstore.open(database_url, settings=fast_settings()) as store:
        user = await store.users.get_by_email(email)
        page = await store.for_user(user.id).tasks.list()
    assert [t.title for t in page.items] == [kept]
    return errlog.read_text()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_on_sqlite(tmp_path: Path, mode: str) -> None:
    url = f"sqlite:///{tmp_path / 'mcp.db'}"
    stderr = await serve_and_exercise(url, tmp_path, mode=mode)
    assert "created user" in stderr
    assert "serving MCP over stdio" in stderr


@pytest.mark.postgres
async def test_stdio_on_postgresql(tmp_path: Path) -> None:
    async with fresh_database("postgresql", tmp_path) as url:
        await serve_and_exercise(url, tmp_path, mode="auto")


async def test_stdio_serves_an_existing_user(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mcp.db'}"
    async with convstore.open(url, settings=fast_settings(), migrate=True) as store:
        user = await store.users.create(email="Existing@Example.com")
        await store.for_user(user.id).tasks.create(title="already there")
    errlog = tmp_path / "stderr.log"
    with errlog.open("w") as err:
        transport = stdio_client(server_params(url, "existing@example.com", tmp_path), errlog=err)
        async with asyncio.timeout(STEP_TIMEOUT), Client(transport) as client:
            listed = structured(await call(client, "list_tasks", {}))
    assert [t["title"] for t in listed["tasks"]] == ["already there"]
    assert "created user" not in errlog.read_text()
