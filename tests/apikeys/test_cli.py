"""``convstore api-keys create|list|revoke`` as subprocesses, on both databases; the key they
print signs in to the API."""

from __future__ import annotations

from pathlib import Path

import pytest

import convstore
from tests.conftest import BACKENDS
from tests.support.api import api_settings, client_for, running_app
from tests.support.databases import fresh_database
from tests.test_cli import run


@pytest.mark.parametrize("kind", BACKENDS)
async def test_create_list_revoke(kind: str, tmp_path: Path) -> None:
    async with fresh_database(kind, tmp_path) as url:
        async with convstore.open(url, migrate=True) as store:
            user = await store.users.create(email="worker-owner@example.com")

        created = run(
            "api-keys",
            "create",
            "--email",
            "Worker-Owner@example.com",
            "--name",
            "nightly job",
            "--expires-in-days",
            "7",
            cwd=tmp_path,
            url=url,
        )
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        assert created.stdout == key + "\n"  # only the key on stdout
        assert key.startswith("csk_")
        assert "not shown again" in created.stderr
        assert key[12:] not in created.stderr

        listed = run(
            "api-keys", "list", "--email", "worker-owner@example.com", cwd=tmp_path, url=url
        )
        assert listed.returncode == 0, listed.stderr
        assert "nightly job" in listed.stdout
        assert key[:12] in listed.stdout
        assert key[12:] not in listed.stdout
        key_id = next(line.split()[0] for line in listed.stdout.splitlines() if key[:12] in line)

        async with running_app(api_settings(url, auto_migrate=False)) as app, client_for(app) as c:
            headers = {"Authorization": f"Bearer {key}"}
            me = await c.get("/api/v1/auth/me", headers=headers)
            assert me.status_code == 200, me.text
            assert me.json()["id"] == str(user.id)

            revoked = run(
                "api-keys", "revoke", key_id, "--email", user.email, cwd=tmp_path, url=url
            )
            assert revoked.returncode == 0, revoked.stderr
            assert (await c.get("/api/v1/auth/me", headers=headers)).status_code == 401

        again = run("api-keys", "revoke", key_id, "--email", user.email, cwd=tmp_path, url=url)
        assert again.returncode == 2
        assert "not found" in again.stderr
        empty = run("api-keys", "list", "--email", user.email, cwd=tmp_path, url=url)
        assert "no API keys" in empty.stdout


async def test_refusals_exit_2_and_write_nothing(tmp_path: Path) -> None:
    async with fresh_database("sqlite", tmp_path) as url:
        async with convstore.open(url, migrate=True) as store:
            user = await store.users.create(email="someone@example.com")
            off = await store.users.create(email="off@example.com")
            await store.users.update(off.id, is_active=False)
        cases = [
            (["create", "--email", "nobody@example.com", "--name", "k"], "not found"),
            (["create", "--email", user.email, "--name", " "], "name"),
            (["create", "--email", user.email, "--name", "x" * 101], "name"),
            (["create", "--email", "off@example.com", "--name", "k"], "deactivated"),
            (["revoke", "not-an-id", "--email", user.email], "key_id"),
        ]
        for args, message in cases:
            result = run("api-keys", *args, cwd=tmp_path, url=url)
            assert result.returncode == 2, (args, result.stdout, result.stderr)
            assert message in result.stderr, (args, result.stderr)
            assert result.stdout == "", args
        listed = run("api-keys", "list", "--email", user.email, cwd=tmp_path, url=url)
        assert "no API keys" in listed.stdout
