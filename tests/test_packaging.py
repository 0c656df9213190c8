"""``pip install convstore`` with no extra is the storage library: it installs into a fresh
virtual environment, opens a SQLite store, appends and reads a message, and loads no server,
provider or MCP module; each extra's absence is named in one line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ["fastapi", "starlette", "uvicorn", "jwt", "argon2", "httpx", "typer", "rich"]
OPTIONAL += ["limits", "asyncpg", "openai", "mcp", "agents", "langchain_core"]

CORE_SCRIPT = """
import asyncio, importlib.util, sys

import convstore
from convstore.extras import MissingExtra

OPTIONAL = {optional!r}
installed = [name for name in OPTIONAL if importlib.util.find_spec(name) is not None]
assert installed == [], installed


async def main() -> None:
    async with convstore.open("sqlite:///{db}", migrate=True) as store:
        user = await store.users.create(email="core@example.com")
        me = store.for_user(user.id)
        conv = await me.conversations.create(title="core")
        await me.messages.append(conv.id, role="user", content="hello from the core")
        page = await me.messages.list(conv.id)
        print("read:", [m.content for m in page.items])
        try:
            await store.users.create(email="pw@example.com", password="a long passphrase")
        except MissingExtra as exc:
            print("password:", exc)
    try:
        async with convstore.open("postgresql://nobody@127.0.0.1/none"):
            pass
    except MissingExtra as exc:
        print("postgres:", exc)


asyncio.run(main())
try:
    import convstore.integrations.agents
except MissingExtra as exc:
    print("agents:", exc)
loaded = sorted({{m.partition(".")[0] for m in sys.modules}} & set(OPTIONAL))
print("loaded:", loaded)
"""


@pytest.mark.install
def test_the_core_install_is_the_storage_library(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # The machine's pip configuration (index, wheel cache) applies: no network beyond it.
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    script = CORE_SCRIPT.format(optional=OPTIONAL, db=(tmp_path / "core.db").as_posix())
    run = subprocess.run(
        [str(python), "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "read: ['hello from the core']" in lines
    assert (
        "password: hashing a password needs the server extra: pip install 'convstore[server]'"
        in lines
    )
    assert (
        "postgres: a postgresql:// database needs the postgres extra: "
        "pip install 'convstore[postgres]'" in lines
    )
    assert (
        "agents: convstore.integrations.agents needs the agents extra: "
        "pip install 'convstore[agents]'" in lines
    )
    assert "loaded: []" in lines

    serve = subprocess.run(
        [str(venv / "bin" / "convstore"), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert serve.returncode == 1
    assert serve.stderr.strip() == (
        "convstore serve needs the server extra: pip install 'convstore[server]'"
    )
