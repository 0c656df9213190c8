"""The `convstore` command, run as a real process (the console script of the installed package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convstore import migrate
from tests.conftest import BACKENDS
from tests.support.databases import fresh_database

CONVSTORE = shutil.which("convstore", path=str(Path(sys.executable).parent)) or "convstore"


def run(*args: str, cwd: Path, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVSTORE_")}
    if url is not None:
        env["CONVSTORE_DATABASE_URL"] = url
    env["COLUMNS"] = "200"
    return subprocess.run(
        [CONVSTORE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_demo_migrates_the_default_sqlite_database_in_the_working_directory(
    tmp_path: Path,
) -> None:
    first = run("demo", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "convstore.db").exists()
    assert "add_task" in first.stdout
    assert "Buy milk" in first.stdout
    again = run("demo", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "2 recent conversation(s)" in again.stdout


@pytest.mark.parametrize("kind", BACKENDS)
async def test_db_commands(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as url:
        behind = run("db", "check", cwd=tmp_path, url=url)
        assert behind.returncode == 1
        assert "no revision" in behind.stderr
        up = run("db", "upgrade", cwd=tmp_path, url=url)
        assert up.returncode == 0, up.stderr
        assert f"revision {migrate.head_revision()}" in up.stdout
        current = run("db", "current", cwd=tmp_path, url=url)
        assert "up to date" in current.stdout
        check = run("db", "check", cwd=tmp_path, url=url)
        assert check.returncode == 0, check.stderr
        down = run("db", "downgrade", "base", cwd=tmp_path, url=url)
        assert down.returncode == 0, down.stderr
        assert "behind" in run("db", "current", cwd=tmp_path, url=url).stdout


def test_a_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    result = run("db", "current", "--database-url", "mysql://x@localhost/db", cwd=tmp_path)
    assert result.returncode == 2
    assert "unsupported database" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_grant_prints_the_app_roles_privileges(tmp_path: Path) -> None:
    printed = run("db", "grant", "convstore_app", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines == [f"{statement};" for statement in migrate.grant_statements("convstore_app")]
    assert all(line.endswith('TO "convstore_app";') or "FROM" in line for line in lines)
    assert not any(word in printed.stdout for word in ("OWNER", "BYPASSRLS", "SUPERUSER"))
    refused = run("db", "grant", 'app"; DROP TABLE users; --', cwd=tmp_path)
    assert refused.returncode == 2
    assert "role" in refused.stderr
    on_sqlite = run("db", "grant", "app", "--execute", cwd=tmp_path, url="sqlite:///x.db")
    assert on_sqlite.returncode == 2
    assert "PostgreSQL only" in on_sqlite.stderr
