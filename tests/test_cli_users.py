"""``convstore users …`` and ``convstore purge``, run as real processes on SQLite and
PostgreSQL; the purge also as PostgreSQL's application role (row-level security applies) and
as the server's background task."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

import convstore
from convstore.commands.purge import purge_deleted
from convstore.conversations.models import Conversation
from convstore.errors import NotFound
from convstore.kit.types import utc_now
from tests.conftest import BACKENDS, fast_settings
from tests.support.api import api_settings, running_app
from tests.support.databases import fresh_database
from tests.support.roles import deployed_database
from tests.test_cli import CONVSTORE

FAST_HASH = {
    "CONVSTORE_ENV": "test",
    "CONVSTORE_PASSWORD_HASH_TIME_COST": "2",
    "CONVSTORE_PASSWORD_HASH_MEMORY_KIB": "19456",
    "CONVSTORE_PASSWORD_HASH_PARALLELISM": "1",
}


def run(
    *args: str, url: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONVSTORE_")}
    return subprocess.run(
        [CONVSTORE, *args],
        cwd=cwd,
        env={**base, **FAST_HASH, "CONVSTORE_DATABASE_URL": url, "COLUMNS": "200", **(env or {})},
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


@pytest.mark.parametrize("kind", BACKENDS)
async def test_users_commands(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as url:
        ok(run("db", "upgrade", url=url, cwd=tmp_path))
        pw = {"CONVSTORE_NEW_USER_PASSWORD": "a long enough passphrase 1"}
        created = ok(
            run("users", "create", "--email", "Ann@Example.com", url=url, cwd=tmp_path, env=pw)
        )
        ann_id = created.split()[0]
        assert created.split()[1:] == ["ann@example.com", "user", "active"]
        ok(
            run(
                "users",
                "create",
                "--email",
                "bo@example.com",
                "--password-stdin",
                url=url,
                cwd=tmp_path,
                stdin="another long passphrase 2\n",
            )
        )
        taken = run("users", "create", "--email", "ann@example.com", url=url, cwd=tmp_path, env=pw)
        assert taken.returncode == 2
        assert taken.stderr == "error: a user with this email already exists\n"
        no_password = run("users", "create", "--email", "cy@example.com", url=url, cwd=tmp_path)
        assert no_password.returncode == 2
        assert "CONVSTORE_NEW_USER_PASSWORD" in no_password.stderr

        first = run("users", "list", "--limit", "1", url=url, cwd=tmp_path)
        assert ok(first).split()[:2] == [ann_id, "ann@example.com"]
        assert first.stderr == f"more: --after {ann_id}\n"
        rest = run("users", "list", "--after", ann_id, url=url, cwd=tmp_path)
        assert ok(rest).split()[1] == "bo@example.com"
        assert rest.stderr == ""

        only_bo = run("users", "list", "--email-prefix", "BO@", url=url, cwd=tmp_path)
        assert [line.split()[1] for line in ok(only_bo).splitlines()] == ["bo@example.com"]
        assert ok(run("users", "list", "--disabled", url=url, cwd=tmp_path)) == ""
        active = ok(run("users", "list", "--active", url=url, cwd=tmp_path))
        assert len(active.splitlines()) == 2
        blank = run("users", "list", "--email-prefix", " ", url=url, cwd=tmp_path)
        assert (blank.returncode, blank.stderr) == (2, "error: email_prefix: must not be blank\n")

        assert "role: user" in ok(run("users", "show", ann_id, url=url, cwd=tmp_path))
        ok(run("users", "set-role", "ann@example.com", "admin", url=url, cwd=tmp_path))
        bad_role = run("users", "set-role", ann_id, "root", url=url, cwd=tmp_path)
        assert bad_role.returncode == 2
        assert bad_role.stderr.startswith("error: role:")
        assert ok(run("users", "disable", ann_id, url=url, cwd=tmp_path)).split()[2:] == [
            "admin",
            "disabled",
        ]
        async with convstore.open(url, settings=fast_settings()) as store:
            account = await store.users.get(ann_id)
            assert (account.role, account.is_active) == ("admin", False)
        disabled = ok(run("users", "list", "--disabled", url=url, cwd=tmp_path))
        assert disabled.split()[:2] == [ann_id, "ann@example.com"]
        assert ok(run("users", "enable", ann_id, url=url, cwd=tmp_path)).split()[3] == "active"

        refused = run("users", "delete", ann_id, url=url, cwd=tmp_path)
        assert refused.returncode == 2
        assert "--yes" in refused.stderr
        assert ok(run("users", "delete", ann_id, "--yes", url=url, cwd=tmp_path)) == (
            "deleted ann@example.com\n"
        )
        missing = run("users", "show", ann_id, url=url, cwd=tmp_path)
        assert (missing.returncode, missing.stderr) == (2, "error: user not found\n")


async def _old_and_new_deletions(url: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """Two users' conversations: one deleted 40 days ago, one deleted now, one live."""
    async with convstore.open(url, settings=fast_settings(), migrate=True) as store:
        ids = []
        for email in ("old@example.com", "new@example.com"):
            owner = await store.users.create(email=email)
            mine = store.for_user(owner.id)
            conv = await mine.conversations.create(title=email)
            await mine.messages.append(conv.id, role="user", content="hi")
            await mine.conversations.delete(conv.id)
            ids.append((owner.id, conv.id))
        live = await mine.conversations.create(title="live")
        (old_user, old), (_, new) = ids
        async with store.writing(old_user) as conn:
            table = Conversation.__table__
            await conn.execute(
                update(table)
                .where(table.c.id == old)
                .values(deleted_at=utc_now() - timedelta(days=40))
            )
        return old, new, live.id


async def _remaining(url: str) -> set[uuid.UUID]:
    async with convstore.open(url, settings=fast_settings()) as store:
        found = set()
        for email in ("old@example.com", "new@example.com"):
            owner = await store.users.get_by_email(email)
            page = await store.for_user(owner.id).conversations.list(include_deleted=True)
            found |= {c.id for c in page.items}
        return found


@pytest.mark.parametrize("kind", BACKENDS)
async def test_purge_deletes_only_what_was_deleted_before_the_retention(
    kind: str, tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as url:
        old, new, live = await _old_and_new_deletions(url)
        unset = run("purge", url=url, cwd=tmp_path)
        assert (unset.returncode, unset.stderr) == (
            2,
            "error: give --older-than DAYS or set CONVSTORE_PURGE_RETENTION_DAYS\n",
        )
        out = ok(run("purge", "--older-than", "30", url=url, cwd=tmp_path))
        assert out.startswith("purged 1 conversation(s) deleted before ")
        assert await _remaining(url) == {new, live}
        from_setting = run(
            "purge", url=url, cwd=tmp_path, env={"CONVSTORE_PURGE_RETENTION_DAYS": "0"}
        )
        assert ok(from_setting).startswith("purged 1 conversation(s)")
        assert await _remaining(url) == {live}


@pytest.mark.postgres
async def test_purge_as_the_application_role_under_row_level_security(tmp_path: Path) -> None:
    async with deployed_database(tmp_path) as db:
        old, new, live = await _old_and_new_deletions(db.owner_url)
        out = ok(run("purge", "--older-than", "30", url=db.app_url, cwd=tmp_path))
        assert out.startswith("purged 1 conversation(s)")
        assert await _remaining(db.owner_url) == {new, live}
        async with convstore.open(db.app_url, settings=fast_settings()) as store:
            # One purger at a time: a second one, while the lock is held, skips its round.
            engine = store.db.engine
            from convstore.conversations import retention

            async with engine.connect() as holder:
                assert await retention.try_lock(holder)
                skipped = await purge_deleted(store, 0)
                await retention.unlock(holder)
            assert skipped.skipped
            assert skipped.conversations == 0
            assert (await purge_deleted(store, 0)).conversations == 1


@pytest.mark.parametrize("kind", BACKENDS)
async def test_the_server_purges_periodically_when_the_retention_is_set(
    kind: str, tmp_path: Path
) -> None:
    async with fresh_database(kind, tmp_path) as url:
        old, new, live = await _old_and_new_deletions(url)
        settings = api_settings(url).model_copy(
            update={"purge_retention_days": 30, "purge_interval_seconds": 0.05}
        )
        async with running_app(settings):
            for _ in range(100):
                if old not in await _remaining(url):
                    break
                await asyncio.sleep(0.05)
        assert await _remaining(url) == {new, live}
        async with convstore.open(url, settings=fast_settings()) as store:
            owner = await store.users.get_by_email("old@example.com")
            with pytest.raises(NotFound):
                await store.for_user(owner.id).conversations.get(old, include_deleted=True)
