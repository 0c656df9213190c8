"""The chat page in a real headless Chromium (Debian's ``chromium``, driven by Playwright for
Python) against a real ``convstore serve`` on loopback.

``scripts/install-chromium.sh`` installs the browser (``bash .ci/run`` runs it). Without it, or
without Playwright, these tests are skipped with the reason, except under ``CI=true``, where
they fail: CI must run them.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from tests.http.test_serve import free_port, start_serve, stop, wait_until_up
from tests.support.fake_llm import FakeModel

CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
LOOPBACK = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def _chromium() -> str | None:
    for candidate in CANDIDATES:
        found = candidate if os.access(candidate, os.X_OK) else shutil.which(candidate)
        if found:
            return found
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser tests (scripts/install-chromium.sh)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _chromium()
    if path is None:
        _unavailable("no chromium on this machine: run scripts/install-chromium.sh")
    assert path is not None
    return path


@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[Any]:
    """Chromium through Playwright's sync API, for the tests of this package only: while that
    API is open it leaves its event loop set as the thread's running loop, and an async test
    run after it (in any order) could not start its own."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def servers(
    tmp_path_factory: pytest.TempPathFactory, model: tuple[FakeModel, str]
) -> Iterator[dict[str, str]]:
    """Two ``convstore serve`` processes on SQLite, started side by side: ``builtin`` (the
    default assistant) and ``model`` (the ``openai`` provider on the scripted fake model).
    Their base URLs."""
    common = {
        "CONVSTORE_RATE_LIMIT_AUTH_IP": "1000/minute",
        "CONVSTORE_RATE_LIMIT_LOGIN_ACCOUNT": "1000/minute",
        "CONVSTORE_ACCESS_LOG": "false",
    }
    extra = {
        "builtin": {},
        "model": {
            "CONVSTORE_ASSISTANT_PROVIDER": "openai",
            "CONVSTORE_OPENAI_BASE_URL": model[1],
            "CONVSTORE_OPENAI_API_KEY": "unused",
            "CONVSTORE_OPENAI_MAX_RETRIES": "0",
        },
    }
    started = {}
    try:
        for name, env in extra.items():
            tmp = tmp_path_factory.mktemp(f"web-{name}")
            log = tmp / "serve.log"
            started[name] = (*start_serve(tmp, log, **common, **env), log)
        bases = {}
        for name, (proc, port, log) in started.items():
            bases[name] = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=bases[name]) as client:
                wait_until_up(client, proc, log)
        yield bases
    finally:
        for proc, _, _ in started.values():
            stop(proc)


@pytest.fixture(scope="session")
def server(servers: dict[str, str]) -> str:
    """The server with the built-in assistant."""
    return servers["builtin"]


@pytest.fixture(scope="session")
def model_server(servers: dict[str, str]) -> str:
    """The server whose assistant is the scripted model (``model``)."""
    return servers["model"]


class Watch:
    """What a page did that a test must see: console CSP violations, script errors, dialogs,
    and every request to a host other than loopback (aborted before it leaves)."""

    def __init__(self) -> None:
        self.csp: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.foreign: list[str] = []

    def assert_clean(self) -> None:
        assert not self.csp, f"CSP violations: {self.csp}"
        assert not self.errors, f"page errors: {self.errors}"
        assert not self.dialogs, f"dialogs opened: {self.dialogs}"
        assert not self.foreign, f"requests left loopback: {self.foreign}"


@pytest.fixture
def watched(browser: Any, server: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no stored session) and page on ``server``, watched; the test
    ends with the watch clean unless it asserts on it itself. ``viewport`` may be set with
    ``@pytest.mark.parametrize`` indirectly (default 1280×800)."""
    viewport = getattr(request, "param", None) or {"width": 1280, "height": 800}
    base = (
        request.getfixturevalue("model_server")
        if "model_server" in request.fixturenames
        else server
    )
    context = browser.new_context(base_url=base, viewport=viewport)
    watch = Watch()

    def route(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            watch.foreign.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda m: _console(watch, m))
    page.on("pageerror", lambda e: watch.errors.append(str(e)))
    page.on("dialog", lambda d: (watch.dialogs.append(d.message), d.dismiss()))
    page.set_default_timeout(10_000)
    try:
        yield page, watch
    finally:
        context.close()


def _console(watch: Watch, message: Any) -> None:
    text = message.text
    if "Content Security Policy" in text or "Content-Security-Policy" in text:
        watch.csp.append(text)
    elif message.type == "error" and "Failed to load resource" not in text:
        watch.errors.append(text)


@pytest.fixture(scope="session")
def model() -> Iterator[tuple[FakeModel, str]]:
    """A scripted Chat Completions server (tests/support/fake_llm.py) under uvicorn in a thread
    of its own: the model and its base URL."""
    fake = FakeModel()
    port = free_port()
    config = uvicorn.Config(fake.app(), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the fake model's server stopped"
        assert time.monotonic() < deadline, "the fake model did not start"
        time.sleep(0.02)
    try:
        yield fake, f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)
