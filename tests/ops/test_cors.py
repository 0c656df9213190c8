"""CORS: off by default; the configured origins get preflight answers and readable headers."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from convstore import Settings
from tests.http.helpers import API
from tests.support.api import api_settings, client_for, register, running_app

FRONT_END = "https://app.example"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return api_settings(f"sqlite:///{tmp_path / 'cors.db'}", **overrides)


async def test_an_allowed_origin_gets_a_preflight_answer_and_readable_headers(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, cors_origins=f"{FRONT_END}, https://other.example")
    async with running_app(settings) as app, client_for(app) as client:
        answer = await client.options(
            f"{API}/conversations", headers={"Origin": FRONT_END, **PREFLIGHT}
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == FRONT_END
        allowed = {
            h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")
        }
        assert {"authorization", "content-type", "idempotency-key", "last-event-id"} <= allowed
        assert "POST" in answer.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in answer.headers
        assert answer.headers["x-request-id"]

        alice = await register(client)
        created = await client.post(
            f"{API}/conversations",
            json={"title": "from the browser"},
            headers={**alice.headers, "Origin": FRONT_END},
        )
        assert created.status_code == 201
        assert created.headers["access-control-allow-origin"] == FRONT_END
        exposed = {
            h.strip().lower() for h in created.headers["access-control-expose-headers"].split(",")
        }
        assert {"location", "idempotent-replayed", "x-request-id", "retry-after"} <= exposed


async def test_another_origin_gets_no_allow_origin(tmp_path: Path) -> None:
    async with running_app(_settings(tmp_path, cors_origins=[FRONT_END])) as app:
        async with client_for(app) as client:
            answer = await client.options(
                f"{API}/conversations", headers={"Origin": "https://evil.example", **PREFLIGHT}
            )
            assert answer.status_code == 400
            assert "access-control-allow-origin" not in answer.headers
            plain = await client.get("/healthz", headers={"Origin": "https://evil.example"})
            assert plain.status_code == 200
            assert "access-control-allow-origin" not in plain.headers


async def test_cors_is_off_by_default(tmp_path: Path) -> None:
    async with running_app(_settings(tmp_path)) as app, client_for(app) as client:
        answer = await client.options(
            f"{API}/conversations", headers={"Origin": FRONT_END, **PREFLIGHT}
        )
        assert answer.status_code == 405  # an ordinary OPTIONS request: no such method
        assert not any(name.startswith("access-control-") for name in answer.headers)


async def test_credentials_go_to_named_origins_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path, cors_origins=f'["{FRONT_END}"]', cors_allow_credentials=True)
    async with running_app(settings) as app, client_for(app) as client:
        answer = await client.options(
            f"{API}/conversations", headers={"Origin": FRONT_END, **PREFLIGHT}
        )
        assert answer.headers["access-control-allow-origin"] == FRONT_END
        assert answer.headers["access-control-allow-credentials"] == "true"
    with pytest.raises(ValidationError, match="cors_origins must name the origins"):
        Settings(cors_origins="*", cors_allow_credentials=True)


@pytest.mark.parametrize("origin", ["app.example", "https://app.example/", "https://a.example/x"])
def test_an_origin_is_scheme_host_and_port(origin: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(cors_origins=origin)


def test_origins_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVSTORE_CORS_ORIGINS", "https://a.example,https://b.example:8443")
    assert Settings().cors_origins == ["https://a.example", "https://b.example:8443"]
    monkeypatch.setenv("CONVSTORE_CORS_ORIGINS", '["https://c.example"]')
    assert Settings().cors_origins == ["https://c.example"]
