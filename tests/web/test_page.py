"""The chat page as a person uses it, in headless Chromium against ``convstore serve``."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.support.api import PASSWORD
from tests.support.fake_llm import FakeModel, Step

NARROW = {"width": 375, "height": 740}


def email() -> str:
    return f"web-{uuid.uuid4().hex[:12]}@example.com"


def register(page: Any, address: str | None = None) -> str:
    """Create an account through the page's form; signed in afterwards. Returns the address."""
    address = address or email()
    page.goto("/")
    page.get_by_role("button", name="New here? Create an account").click()
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_label("Message", exact=True).wait_for()
    return address


def sign_in(page: Any, address: str) -> None:
    page.goto("/")
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Message", exact=True).wait_for()


def api_client(page: Any, server: str) -> httpx.Client:
    """An API client signed in as the page's user (with the page's own access token)."""
    stored = json.loads(page.evaluate("localStorage.getItem('convstore.session')"))
    headers = {"Authorization": f"Bearer {stored['access_token']}"}
    return httpx.Client(base_url=f"{server}/api/v1", headers=headers)


def send(page: Any, text: str) -> Any:
    """Type ``text`` and press Enter; returns the chat turn's HTTP response (the SSE stream)."""
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    with page.expect_response(lambda r: "/api/v1/chat/" in r.url) as turn:
        box.press("Enter")
    return turn.value


def last_reply(page: Any) -> Any:
    reply = page.locator("article.message.assistant").last
    reply.and_(page.locator(":not(.streaming)")).wait_for()
    return reply


def test_chat_turn_streams_shows_its_tool_step_and_the_task_it_added(
    watched: tuple[Any, Any], server: str
) -> None:
    page, watch = watched
    register(page)
    box = page.get_by_label("Message", exact=True)
    box.fill("first line")
    box.press("Shift+Enter")  # a new line, not a send
    assert box.input_value() == "first line\n"
    box.fill("")

    turn = send(page, "add buy milk tomorrow #home")
    assert turn.headers["content-type"].startswith("text/event-stream")
    body = turn.text()
    assert "event: chunk" in body
    assert "event: done" in body
    assert json.loads(turn.request.post_data)["stream"] is True

    reply = last_reply(page)
    assert "milk" in reply.locator(".md").inner_text()
    step = reply.locator("details.tool")
    assert step.locator(".tool-name").inner_text() == "add_task"
    assert step.locator(".tool-state").inner_text() == "done"
    step.locator("summary").click()
    assert '"title": "Buy milk"' in step.locator("pre").first.inner_text()

    tasks = page.locator("#tasks")
    tasks.locator(".pending .task-title", has_text="Buy milk").wait_for()
    assert "#home" in tasks.locator(".pending .task").first.inner_text()

    match = re.search(r"[?&]c=([0-9a-f-]{36})", page.url)
    assert match, page.url
    conversation_id = match.group(1)
    page.get_by_role("button", name="add buy milk tomorrow #home", exact=True).wait_for()

    # Tick it off: the server has it done, the panel moves it to Done.
    tasks.get_by_label(re.compile("Buy milk")).check()
    tasks.get_by_text("Done (1)").wait_for()
    assert tasks.locator(".pending .task").count() == 0
    with api_client(page, server) as api:
        [task] = api.get("/tasks", params={"completed": "true"}).json()["items"]
        assert task["title"] == "Buy milk"
        assert task["completed"] is True

    # A reload keeps the conversation: the same id in the URL, its messages back.
    page.reload()
    page.locator("article.message.user", has_text="add buy milk tomorrow #home").wait_for()
    assert conversation_id in page.url
    assert page.locator("article.message.assistant details.tool .tool-name").inner_text() == (
        "add_task"
    )
    assert page.locator(".chat-title").inner_text() == "add buy milk tomorrow #home"

    # Another turn in the same conversation: the newest message is in view.
    send(page, "what's left?")
    last_reply(page)
    assert page.locator("article.message").count() == 4
    assert page.locator("article.message").last.is_visible()
    log = page.locator(".log")
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 80
    watch.assert_clean()


def test_live_tool_frames_and_unknown_frames(watched: tuple[Any, Any], server: str) -> None:
    """The tool_call / tool_result frames render as they arrive (before done); unknown frame
    types are ignored. The stream here is the server's own turn with the frames the page must
    handle added in front of it by the browser (page.route fulfils the request)."""
    page, watch = watched
    register(page)
    conversation = str(uuid.uuid4())
    message = str(uuid.uuid4())
    frames = [
        {
            "type": "chunk",
            "conversation_id": conversation,
            "message_id": message,
            "index": 0,
            "delta": "Working on it. ",
        },
        {
            "type": "tool_call",
            "conversation_id": conversation,
            "message_id": message,
            "call_id": "call_1",
            "name": "lookup",
            "arguments": {"q": "<b>x</b>"},
        },
        {"type": "something_new", "conversation_id": conversation, "payload": 1},
        {
            "type": "tool_result",
            "conversation_id": conversation,
            "message_id": message,
            "call_id": "call_1",
            "name": "lookup",
            "ok": False,
            "result": None,
            "error": "the index is offline",
        },
        {
            "type": "error",
            "conversation_id": conversation,
            "message_id": message,
            "code": "provider_error",
            "detail": "the model went away",
            "retryable": True,
        },
    ]
    body = "".join(f"event: {f['type']}\ndata: {json.dumps(f)}\n\n" for f in frames)
    page.route(
        "**/api/v1/chat/messages",
        lambda route: route.fulfill(
            status=200, headers={"Content-Type": "text/event-stream"}, body=body
        ),
    )
    page.route(
        f"**/api/v1/conversations/{conversation}/messages*",
        lambda route: route.fulfill(
            status=200, json={"items": [], "next_cursor": None, "has_more": False}
        ),
    )
    send(page, "look something up")
    reply = page.locator("article.message.assistant").last
    step = reply.locator("details.tool")
    step.locator(".tool-state", has_text="failed").wait_for()
    assert step.locator(".tool-name").inner_text() == "lookup"
    step.locator("summary").click()
    assert "the index is offline" in step.inner_text()
    assert "<b>x</b>" in step.locator("pre").first.inner_text()  # arguments shown as text
    assert "Working on it." in reply.inner_text()
    assert reply.get_by_role("alert").inner_text().startswith("the model went away")
    assert reply.get_by_role("button", name="Retry").is_visible()
    watch.assert_clean()


def test_hostile_content_shows_as_text(watched: tuple[Any, Any], server: str) -> None:
    page, watch = watched
    register(page)
    hostile = (
        "<script>window.__pwned = 1; alert(1)</script> "
        '<img src=x onerror="window.__pwned = 2; alert(2)"> '
        "[a link](https://example.com/page) [js](javascript:alert(3)) ![i](https://example.com/i.png)"
    )
    send(page, hostile)
    last_reply(page)
    mine = page.locator("article.message.user").last
    text = mine.inner_text()
    assert "<script>window.__pwned = 1; alert(1)</script>" in text
    assert '<img src=x onerror="window.__pwned = 2; alert(2)">' in text
    assert page.locator("article img, article script").count() == 0
    assert page.evaluate("window.__pwned") is None
    link = mine.get_by_role("link", name="a link")
    assert link.get_attribute("href") == "https://example.com/page"
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert mine.locator('a[href^="javascript:"]').count() == 0
    # Reloaded from the store, it is still text.
    page.reload()
    page.locator("article.message.user", has_text="<script>").wait_for()
    assert page.locator("article img, article script").count() == 0
    assert page.evaluate("window.__pwned") is None
    watch.assert_clean()


def test_page_headers_forbid_inline_script_and_other_origins(server: str) -> None:
    with httpx.Client(base_url=server) as client:
        for path in ("/", "/static/app.js", "/static/vendor/markdown-it.mjs", "/static/app.css"):
            response = client.get(path)
            assert response.status_code == 200, path
            csp = response.headers["content-security-policy"]
            directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
            assert directives["script-src"] == "'self'", path
            assert directives["default-src"] == "'none'"
            assert directives["connect-src"] == "'self'"
            assert "unsafe-inline" not in csp
            assert "unsafe-eval" not in csp
        assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
        assert (
            client.get("/static/vendor/markdown-it.mjs")
            .headers["content-type"]
            .startswith("text/javascript")
        )
        missing = client.get("/static/nothing-here.js")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


def test_conversations_page_rename_delete_undo_filter(
    watched: tuple[Any, Any], server: str
) -> None:
    page, watch = watched
    address = register(page)
    with api_client(page, server) as api:
        for n in range(25):  # oldest first: "chat 24" is the most recent
            assert api.post("/conversations", json={"title": f"chat {n:02d}"}).status_code == 201
    page.reload()
    side = page.locator("#conversations")
    items = side.locator("li.conversation")
    items.first.wait_for()
    assert items.first.inner_text().startswith("chat 24")
    # Scrolling to the end of the list loads the next page.
    side.locator(".scroll").evaluate("el => el.scrollTo(0, el.scrollHeight)")
    side.get_by_role("button", name="chat 00", exact=True).wait_for()
    assert items.count() == 25

    # Filter by title.
    side.get_by_label("Filter conversations by title").fill("chat 1")
    assert items.count() == 10
    side.get_by_label("Filter conversations by title").fill("")

    # Rename.
    side.get_by_role("button", name="Rename chat 03").click()
    field = side.get_by_label("New title for chat 03")
    field.fill("groceries")
    with page.expect_response(lambda r: r.request.method == "PATCH") as renamed:
        field.press("Enter")
    assert renamed.value.status == 200
    side.get_by_role("button", name="groceries", exact=True).wait_for()
    with api_client(page, server) as api:
        titles = [
            c["title"] for c in api.get("/conversations", params={"limit": 100}).json()["items"]
        ]
    assert "groceries" in titles
    assert "chat 03" not in titles

    # Delete, then undo.
    side.get_by_role("button", name="groceries", exact=True).click()
    assert re.search(r"[?&]c=", page.url)
    side.get_by_role("button", name="Delete groceries").click()
    toast = page.get_by_role("status")
    toast.get_by_text("Deleted “groceries”.").wait_for()
    assert side.get_by_role("button", name="groceries", exact=True).count() == 0
    assert page.url.rstrip("/").endswith(server.split("//")[1]) or "c=" not in page.url
    toast.get_by_role("button", name="Undo").click()
    side.get_by_role("button", name="groceries", exact=True).wait_for()
    assert page.locator(".chat-title").inner_text() == "groceries"

    # Sign out, sign back in: the same list.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    assert page.evaluate("localStorage.getItem('convstore.session')") is None
    sign_in(page, address)
    side.get_by_role("button", name="chat 24", exact=True).wait_for()
    watch.assert_clean()


def test_another_user_sees_none_of_it(browser: Any, watched: tuple[Any, Any], server: str) -> None:
    page, watch = watched
    register(page)
    send(page, "add water the plants #home")
    last_reply(page)
    foreign_url = page.url
    assert "c=" in foreign_url

    other = browser.new_context(base_url=server)
    try:
        intruder = other.new_page()
        register(intruder)
        intruder.goto(foreign_url)
        intruder.get_by_role("status").get_by_text("does not exist").wait_for()
        assert "c=" not in intruder.url
        assert intruder.locator("article.message").count() == 0
        assert intruder.locator("li.conversation").count() == 0
        assert intruder.locator("#tasks .task").count() == 0
        assert "water the plants" not in intruder.content()
    finally:
        other.close()
    watch.assert_clean()


@pytest.mark.parametrize("watched", [NARROW], indirect=True)
def test_usable_at_375_px(watched: tuple[Any, Any], server: str) -> None:
    page, watch = watched
    register(page)
    send(page, "add call mom friday")
    last_reply(page)

    def no_sideways_scroll() -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], width

    no_sideways_scroll()
    assert page.get_by_label("Message", exact=True).is_visible()
    assert page.get_by_role("button", name="Send").is_visible()
    assert not page.locator("#tasks").is_visible()
    page.get_by_role("button", name=re.compile(r"^Tasks")).click()
    page.locator("#tasks .task-title", has_text="call mom").wait_for()
    no_sideways_scroll()
    page.get_by_role("button", name=re.compile(r"^Tasks")).click()
    page.get_by_role("button", name="Chats").click()
    page.locator("#conversations").get_by_role("button", name="New chat").click()
    assert not page.locator("#conversations").is_visible()
    assert page.locator("article.message").count() == 0
    no_sideways_scroll()
    watch.assert_clean()


def test_follows_the_dark_colour_scheme(browser: Any, server: str) -> None:
    def background(scheme: str) -> str:
        context = browser.new_context(base_url=server, color_scheme=scheme)
        try:
            page = context.new_page()
            page.goto("/")
            page.get_by_label("Email").wait_for()
            return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))
        finally:
            context.close()

    assert background("dark") == "rgb(21, 22, 26)"
    assert background("light") == "rgb(247, 247, 248)"


def test_keyboard_reaches_the_labelled_controls(watched: tuple[Any, Any], server: str) -> None:
    page, watch = watched
    page.goto("/")
    page.get_by_label("Email").wait_for()
    reached = []
    for _ in range(6):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                "(() => { const e = document.activeElement;"
                " return e.labels && e.labels.length ? e.labels[0].innerText"
                " : e.getAttribute('aria-label') || e.innerText; })()"
            )
        )
    assert reached[:4] == ["Email", "Password", "Sign in", "New here? Create an account"]
    watch.assert_clean()


@pytest.mark.parametrize(
    ("path", "ready"), [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")]
)
def test_api_docs_render_offline(
    watched: tuple[Any, Any], server: str, path: str, ready: str
) -> None:
    """The viewers render from local assets; nothing is fetched from another host (the route
    aborts any request that would leave loopback; the viewers' CSP stops ReDoc's footer logo
    on its vendor's CDN before it is even requested)."""
    page, watch = watched
    answered: list[str] = []
    page.on("response", lambda r: answered.append(r.url))
    page.goto(path)
    title = page.locator(ready).first
    title.wait_for()
    assert "convstore" in title.inner_text()
    page.get_by_text("/api/v1/auth/register").first.wait_for(state="attached")  # the routes
    assert answered
    assert all(u.startswith((server, "data:", "blob:")) for u in answered), answered
    assert not watch.foreign, watch.foreign
    assert not watch.errors, watch.errors
    assert all("img-src" in violation for violation in watch.csp), watch.csp
    assert not watch.dialogs


def test_stop_cancels_the_turn_and_retry_answers_again(
    watched: tuple[Any, Any], model_server: str, model: tuple[FakeModel, str]
) -> None:
    """With a model that writes slowly: Stop aborts the stream, the server ends the turn (the
    reply stored as interrupted), and Retry answers the same message again."""
    page, watch = watched
    fake, _ = model
    fake.steps[:] = [
        Step(text=" ".join(f"word{n}" for n in range(60)), chunk_delay=0.2),
        Step(text="Here is the whole answer."),
    ]
    register(page)
    send(page, "tell me a long story")
    reply = page.locator("article.message.assistant").last
    reply.locator(".md", has_text="word1").wait_for()
    page.get_by_role("button", name="Stop").click()
    reply.get_by_role("alert").get_by_text("Stopped.").wait_for()
    assert page.get_by_role("button", name="Send").is_visible()
    conversation_id = re.search(r"[?&]c=([0-9a-f-]{36})", page.url).group(1)  # type: ignore[union-attr]

    with api_client(page, model_server) as api:
        deadline = time.monotonic() + 10
        while True:
            stored = api.get(f"/conversations/{conversation_id}/messages").json()["items"][-1]
            if stored["status"] != "streaming" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert stored["status"] == "error"
    assert stored["metadata"]["error"]["detail"] == "the reply was interrupted"
    assert "word59" not in stored["content"]

    with page.expect_response(lambda r: r.url.endswith("/retry")) as retried:
        reply.get_by_role("button", name="Retry").click()
    assert retried.value.status == 200
    answer = page.locator("article.message.assistant").last
    answer.locator(".md", has_text="Here is the whole answer.").wait_for()
    assert page.locator("article.message.assistant").count() == 2
    assert page.get_by_role("button", name="Retry").count() == 0
    watch.assert_clean()


def test_an_expired_access_token_is_refreshed_silently(
    watched: tuple[Any, Any], server: str
) -> None:
    page, watch = watched
    register(page)
    send(page, "add renew passport")
    last_reply(page)
    before = json.loads(page.evaluate("localStorage.getItem('convstore.session')"))
    page.evaluate(
        "(() => { const s = JSON.parse(localStorage.getItem('convstore.session'));"
        " s.access_token = 'expired.' + s.access_token.slice(8);"
        " localStorage.setItem('convstore.session', JSON.stringify(s)); })()"
    )
    with page.expect_response(lambda r: r.url.endswith("/auth/refresh")) as refreshed:
        page.reload()
    assert refreshed.value.status == 200
    page.locator("#tasks .task-title", has_text="renew passport").wait_for()
    page.get_by_label("Message", exact=True).wait_for()
    after = json.loads(page.evaluate("localStorage.getItem('convstore.session')"))
    assert after["refresh_token"] != before["refresh_token"]  # rotated
    assert after["access_token"] != before["access_token"]
    watch.assert_clean()


def test_a_refused_turn_can_be_sent_again(watched: tuple[Any, Any], server: str) -> None:
    """A turn refused before it began (here the chat budget's 429, answered by the browser's
    route once) stores nothing; Retry sends the same message again, to the real server."""
    page, watch = watched
    register(page)
    refused: list[str] = []

    def once(route: Any) -> None:
        if refused:
            route.continue_()
            return
        refused.append(route.request.url)
        problem = {
            "type": "urn:convstore:problem:rate-limited",
            "title": "Too many requests",
            "status": 429,
            "code": "rate_limited",
            "detail": "too many chat turns, retry in 5 seconds",
        }
        route.fulfill(status=429, json=problem, headers={"Retry-After": "5"})

    page.route("**/api/v1/chat/messages", once)
    send(page, "add book the dentist")
    reply = page.locator("article.message.assistant").last
    reply.get_by_role("alert").get_by_text("too many chat turns").wait_for()
    assert "c=" not in page.url
    reply.get_by_role("button", name="Retry").click()
    page.locator("#tasks .task-title", has_text="dentist").wait_for()
    assert page.locator("article.message.user").count() == 1
    assert page.locator("article.message.assistant").count() == 1
    assert "c=" in page.url
    assert len(refused) == 1
    watch.assert_clean()


def test_a_long_conversation_opens_at_its_end_and_shows_older_messages(
    watched: tuple[Any, Any], server: str
) -> None:
    page, watch = watched
    register(page)
    with api_client(page, server) as api:
        conversation = api.post("/conversations", json={"title": "long"}).json()
        for n in range(55):
            role = "user" if n % 2 == 0 else "assistant"
            body = {"role": role, "content": f"message {n:02d}"}
            assert api.post(f"/conversations/{conversation['id']}/messages", json=body).is_success
    page.goto(f"/?c={conversation['id']}")
    messages = page.locator("article.message")
    messages.last.get_by_text("message 54").wait_for()
    assert messages.count() == 50
    log = page.locator(".log")
    # Opened at the newest: scrolled to the end, the oldest out of view above.
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 80
    assert log.evaluate("el => el.scrollTop") > 0
    page.get_by_role("button", name="Show older messages").click()
    messages.first.get_by_text("message 00").wait_for()
    assert messages.count() == 55
    assert page.get_by_role("button", name="Show older messages").count() == 0
    watch.assert_clean()
