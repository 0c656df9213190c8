"""The signing secret (RFC 8725 §3.5): generated once into a 0600 file beside the SQLite database
outside production and reused on the next start; production refuses to start without a strong
one, from ``create_app`` and from ``convstore serve``."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from convstore import Settings
from convstore.app import create_app
from convstore.auth.secret import MIN_SECRET_BYTES, WeakSecret, resolve_secret, secret_file
from tests.auth.helpers import me
from tests.support.api import client_for, register, running_app

STRONG = "s" * MIN_SECRET_BYTES


def _settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "development",
        "database_url": database_url,
        "secret_key": None,
        "password_hash_time_cost": 2,
        "password_hash_memory_kib": 19_456,
        "password_hash_parallelism": 1,
    }
    values.update(overrides)
    return Settings.model_validate(values)


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'convstore.db'}"


class TestGenerated:
    def test_generated_beside_the_database_with_mode_0600_and_reused(self, tmp_path: Path) -> None:
        settings = _settings(_sqlite(tmp_path))
        path = tmp_path / "data" / "convstore.db.secret"
        assert secret_file(settings) == path
        assert not path.exists()
        key = resolve_secret(settings)
        assert path.exists()
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert stat.S_ISREG(os.stat(path).st_mode)
        assert len(key) >= MIN_SECRET_BYTES
        assert path.read_bytes().strip() == key
        assert resolve_secret(settings) == key  # the next start reuses it
        other = _settings(f"sqlite:///{tmp_path / 'elsewhere.db'}")
        assert resolve_secret(other) != key  # each database has its own

    def test_not_in_the_file_when_a_secret_is_set(self, tmp_path: Path) -> None:
        settings = _settings(_sqlite(tmp_path), secret_key=STRONG)
        assert resolve_secret(settings) == STRONG.encode()
        assert not secret_file(settings).exists()

    def test_without_a_sqlite_file_it_lives_in_the_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        settings = _settings("postgresql://postgres@127.0.0.1:5432/nowhere")
        key = resolve_secret(settings)
        path = tmp_path / "convstore.secret"
        assert path.read_bytes().strip() == key
        assert os.stat(path).st_mode & 0o777 == 0o600

    @pytest.mark.parametrize("content", [b"\n", b"too short"], ids=["blank", "short"])
    def test_an_empty_or_short_secret_file_is_refused(self, tmp_path: Path, content: bytes) -> None:
        """A file left behind by a crash mid-write must not become an empty HMAC key."""
        settings = _settings(_sqlite(tmp_path))
        path = secret_file(settings)
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        with pytest.raises(WeakSecret, match="CONVSTORE_SECRET_KEY"):
            resolve_secret(settings)

    async def test_tokens_survive_a_restart(self, tmp_path: Path) -> None:
        settings = _settings(_sqlite(tmp_path))
        async with running_app(settings) as app, client_for(app) as c:
            account = await register(c)
        async with running_app(settings) as app, client_for(app) as c:
            assert (await me(c, account.access_token)).status_code == 200
            refreshed = await c.post(
                "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
            )
            assert refreshed.status_code == 200


class TestProduction:
    @pytest.mark.parametrize("secret", [None, "", "x" * (MIN_SECRET_BYTES - 1)])
    def test_create_app_refuses_a_missing_or_weak_secret(
        self, tmp_path: Path, secret: str | None
    ) -> None:
        settings = _settings(_sqlite(tmp_path), env="production", secret_key=secret)
        with pytest.raises(WeakSecret):
            create_app(settings)
        assert not secret_file(settings).exists()  # production never generates one

    def test_create_app_accepts_a_strong_secret(self, tmp_path: Path) -> None:
        settings = _settings(_sqlite(tmp_path), env="production", secret_key=STRONG)
        create_app(settings)
        assert not secret_file(settings).exists()

    def test_development_tolerates_a_short_explicit_secret(self, tmp_path: Path) -> None:
        settings = _settings(_sqlite(tmp_path), secret_key="short")
        assert resolve_secret(settings) == b"short"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _convstore() -> list[str]:
    script = Path(sys.executable).with_name("convstore")
    if script.exists():
        return [str(script)]
    found = shutil.which("convstore")
    assert found is not None
    return [found]


@pytest.mark.parametrize("secret", [None, "short-secret"], ids=["missing", "short"])
def test_serve_refuses_to_start_in_production(tmp_path: Path, secret: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVSTORE_")}
    env.update(
        CONVSTORE_ENV="production",
        CONVSTORE_DATABASE_URL=f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}",
        CONVSTORE_PORT=str(_free_port()),
        NO_COLOR="1",
        COLUMNS="200",
    )
    if secret is not None:
        env["CONVSTORE_SECRET_KEY"] = secret
    result = subprocess.run(
        [*_convstore(), "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "refusing to start" in result.stderr
    assert "CONVSTORE_SECRET_KEY" in result.stderr
    assert list(tmp_path.glob("*.secret")) == []
