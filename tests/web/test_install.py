"""``install_web`` without a browser: what is served, with which headers, under which setting."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from fastapi import FastAPI

from convstore.app import create_app
from convstore.web import APIDOCS_DIR, STATIC_DIR
from tests.support.api import api_settings, client_for

DOC_PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")


def _app(tmp_path: Path, **overrides: object) -> FastAPI:
    return create_app(api_settings(f"sqlite:///{tmp_path / 'unused.db'}", **overrides))


async def test_the_page_and_its_assets_are_served_with_the_policy(tmp_path: Path) -> None:
    async with client_for(_app(tmp_path)) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "no-cache"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert '<script type="module" src="/static/app.js">' in page.text
        assert "<script>" not in page.text  # nothing inline
        for path in sorted(STATIC_DIR.rglob("*")):
            if path.is_file():
                url = "/static/" + path.relative_to(STATIC_DIR).as_posix()
                asset = await client.get(url)
                assert asset.status_code == 200, url
                assert "script-src 'self';" in asset.headers["content-security-policy"], url
        assert (await client.get("/static/../__init__.py")).status_code == 404
        assert (await client.get("/static")).status_code == 404


@pytest.mark.parametrize("path", DOC_PAGES)
async def test_the_documents_use_local_assets_and_hash_their_inline_script(
    tmp_path: Path, path: str
) -> None:
    async with client_for(_app(tmp_path)) as client:
        response = await client.get(path)
        assert response.status_code == 200
        html = response.text
        assert "cdn" not in html
        assert "fonts.googleapis" not in html
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
        for script in scripts:
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in csp
        assert csp.count("'sha256-") == len(scripts)
        for src in re.findall(r'(?:src|href)="(/[^"]+)"', html):
            assert (await client.get(src)).status_code == 200, src


async def test_the_documents_and_their_assets_follow_the_setting(tmp_path: Path) -> None:
    async with client_for(_app(tmp_path, api_docs=False)) as client:
        for path in (*DOC_PAGES, "/openapi.json", "/api-docs-assets/swagger-ui.css"):
            assert (await client.get(path)).status_code == 404, path
        assert (await client.get("/")).status_code == 200  # the page stays
    assert (APIDOCS_DIR / "swagger-ui-bundle.js").is_file()
