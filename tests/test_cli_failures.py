"""Every failure of the `convstore` command is one line naming what is wrong and how to fix it,
with exit code 2 (docs/operations.md), and no traceback. Each case runs the real console script."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from convstore import __version__, migrate
from tests.conftest import BACKENDS
from tests.support.databases import PG_ADMIN_URL, fresh_database
from tests.test_cli import CONVSTORE

BAD_PROVIDER = (
    "error: CONVSTORE_ASSISTANT_PROVIDER='gemini' is not valid: "
    "Input should be 'builtin' or 'openai'"
)


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONVSTORE_")}
    base["CONVSTORE_DATABASE_URL"] = f"sqlite:///{cwd / 'cli.db'}"
    return subprocess.run(
        [CONVSTORE, *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args", [["chat"], ["serve"], ["db", "current"], ["demo"], ["mcp", "--user", "a@b.example"]]
)
def test_a_bad_setting_names_the_variable_its_value_and_the_allowed_ones(
    args: list[str], tmp_path: Path
) -> None:
    result = run(*args, cwd=tmp_path, env={"CONVSTORE_ASSISTANT_PROVIDER": "gemini"})
    assert one_line_failure(result) == BAD_PROVIDER


def test_a_bad_number_setting_names_its_bound(tmp_path: Path) -> None:
    result = run("db", "current", cwd=tmp_path, env={"CONVSTORE_ASSISTANT_MAX_STEPS": "0"})
    assert one_line_failure(result) == (
        "error: CONVSTORE_ASSISTANT_MAX_STEPS='0' is not valid: "
        "Input should be greater than or equal to 1"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize("command", [["serve"], ["db", "upgrade"], ["chat"]])
def test_an_unreachable_postgresql_masks_the_password_and_asks_if_it_runs(
    command: list[str], tmp_path: Path
) -> None:
    url = f"postgresql://app:s3cret@127.0.0.1:{_free_port()}/convstore"
    result = run(*command, cwd=tmp_path, env={"CONVSTORE_DATABASE_URL": url})
    line = one_line_failure(result)
    assert "s3cret" not in result.stderr
    assert line == (
        f"error: cannot reach PostgreSQL at {url.replace('s3cret', '***')} "
        "(connection refused): is the server running?"
    )


@pytest.mark.postgres
def test_a_missing_postgresql_database_says_how_to_create_it(tmp_path: Path) -> None:
    name = f"convstore_missing_{uuid.uuid4().hex[:8]}"
    admin = make_url(PG_ADMIN_URL)
    url = admin.set(database=name, password="pw").render_as_string(hide_password=False)
    result = run("serve", cwd=tmp_path, env={"CONVSTORE_DATABASE_URL": url})
    line = one_line_failure(result)
    assert "pw@" not in line
    flags = f"-h {admin.host} -p {admin.port} -U {admin.username}"
    assert line.startswith(f"error: database '{name}' does not exist at ")
    assert line.endswith(
        f'create it with: createdb {flags} {name} (or the SQL: CREATE DATABASE "{name}")'
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_busy_port_is_found_before_migrating(tmp_path: Path, busy_port: int) -> None:
    result = run("serve", "--port", str(busy_port), cwd=tmp_path)
    assert one_line_failure(result) == (
        f"error: port {busy_port} is in use: set CONVSTORE_PORT or --port"
    )
    assert not (tmp_path / "cli.db").exists()  # nothing was migrated
    from_env = run("serve", cwd=tmp_path, env={"CONVSTORE_PORT": str(busy_port)})
    assert "is in use" in one_line_failure(from_env)


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str, tmp_path: Path) -> None:
    result = run(flag, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"convstore {__version__}\n"


@pytest.mark.parametrize("kind", BACKENDS)
async def test_relative_revisions_up_and_down(kind: str, tmp_path: Path) -> None:
    head = migrate.head_revision()
    async with fresh_database(kind, tmp_path) as url:
        env = {"CONVSTORE_DATABASE_URL": url}
        assert run("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
        down = run("db", "downgrade", "-1", cwd=tmp_path, env=env)
        assert down.returncode == 0, down.stderr
        below = down.stdout.split()[-1]
        assert below != head
        assert run("db", "current", cwd=tmp_path, env=env).stdout.startswith(f"current: {below} ")
        up = run("db", "upgrade", "+1", cwd=tmp_path, env=env)
        assert up.returncode == 0, up.stderr
        assert up.stdout == f"database at revision {head}\n"
        again = run("db", "downgrade", "-1", "--database-url", url, cwd=tmp_path)
        assert again.stdout == f"database at revision {below}\n", again.stderr


COMMANDS = [
    [],
    ["serve"],
    ["chat"],
    ["mcp"],
    ["demo"],
    ["db"],
    ["db", "upgrade"],
    ["db", "downgrade"],
    ["db", "current"],
    ["db", "check"],
    ["db", "grant"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "convstore")
def test_help_is_plain_text_without_markup_or_boxes(command: list[str], tmp_path: Path) -> None:
    result = run(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: convstore")
    for leftover in ("[bold", "[/", "[red", "[dim", "[green", "``", "\x1b["):
        assert leftover not in result.stdout, (leftover, result.stdout)
    assert not set(result.stdout) & set("╭╮╰╯│─┌┐└┘"), result.stdout


@pytest.mark.parametrize("command", [["chat"], ["serve"]])
def test_the_openai_provider_without_a_key_or_url_is_refused(
    command: list[str], tmp_path: Path
) -> None:
    result = run(*command, cwd=tmp_path, env={"CONVSTORE_ASSISTANT_PROVIDER": "openai"})
    assert one_line_failure(result) == (
        "error: CONVSTORE_ASSISTANT_PROVIDER=openai needs CONVSTORE_OPENAI_API_KEY, or "
        "CONVSTORE_OPENAI_BASE_URL for a compatible server that takes no key"
    )


@pytest.mark.parametrize("key", [None, "sk-test"])
def test_an_unreachable_provider_names_its_url_and_whether_a_key_is_set(
    key: str | None, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    env = {
        "CONVSTORE_ASSISTANT_PROVIDER": "openai",
        "CONVSTORE_OPENAI_BASE_URL": url,
        "CONVSTORE_OPENAI_MAX_RETRIES": "0",
        "COLUMNS": "300",
        **({"CONVSTORE_OPENAI_API_KEY": key} if key else {}),
    }
    result = subprocess.run(
        [CONVSTORE, "chat", "--database-url", f"sqlite:///{tmp_path / 'chat.db'}"],
        input="hello\n",
        cwd=tmp_path,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CONVSTORE_")}, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    state = "a key is set" if key else "no key is set: CONVSTORE_OPENAI_API_KEY"
    assert f"cannot reach the model provider at {url}/ ({state})" in result.stdout
    assert "sk-test" not in result.stdout
