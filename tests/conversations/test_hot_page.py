"""The page of messages served by the plain route (``conversations/hot.py``) answers exactly
what the documented FastAPI route answers: the same status, headers and bytes, for pages,
positions, errors and every way of signing in.

The FastAPI route is reached by adding a parameter it ignores (the plain route hands any
request it does not read exactly to it), so each case compares the two on the same app.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from convstore.conversations.hot import PATH, MessageAppend, MessagesPage, _position
from convstore.http.deps import API_PREFIX as API
from tests.support.api import Account

COMPARED = ("content-type", "content-length", "www-authenticate")


async def _both(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    joiner = "&" if "?" in path else "?"
    hot = await client.get(path, headers=headers)
    documented = await client.get(f"{path}{joiner}ignored=1", headers=headers)
    return hot, documented


def _served(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[Any]:
    """The URLs of the requests the plain route ``cls`` answered itself (its ``name`` method
    wrapped, still called)."""
    served: list[Any] = []
    answer = getattr(cls, name)

    async def counted(self: Any, request: Any, *args: Any) -> Any:
        served.append(request.url)
        return await answer(self, request, *args)

    monkeypatch.setattr(cls, name, counted)
    return served


def _same(hot: httpx.Response, documented: httpx.Response) -> None:
    assert hot.status_code == documented.status_code, (hot.text, documented.text)
    assert hot.content == documented.content
    for name in COMPARED:
        assert hot.headers.get(name) == documented.headers.get(name), name


async def _conversation(client: httpx.AsyncClient, account: Account, messages: int) -> str:
    created = await client.post(f"{API}/conversations", json={}, headers=account.headers)
    cid = str(created.json()["id"])
    for i in range(messages):
        body = {"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"}
        if i == 3:
            body["metadata"] = {"n": i}
        appended = await client.post(
            f"{API}/conversations/{cid}/messages", json=body, headers=account.headers
        )
        assert appended.status_code == 201, appended.text
    return cid


def test_the_plain_routes_go_first_one_method_each(app: FastAPI) -> None:
    first, second = app.router.routes[:2]
    assert getattr(first, "path", None) == getattr(second, "path", None) == PATH
    assert [first.methods, second.methods] == [{"POST"}, {"GET"}]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("query", "read"),
    [
        ("", {"limit": 20, "cursor": None, "after": None, "before": None}),
        ("limit=5&after=0", {"limit": 5, "cursor": None, "after": 0, "before": None}),
        ("limit=0", None),
        ("limit=101", None),
        ("limit=05", None),
        ("limit=5&limit=6", None),
        ("after=-1", None),
        ("after=2147483648", None),
        ("cursor=", None),
        ("other=1", None),
    ],
)
def test_only_plain_parameters_are_read_here(query: str, read: dict[str, object] | None) -> None:
    params = [tuple(p.split("=", 1)) for p in query.split("&")] if query else []
    assert _position(params) == read  # type: ignore[arg-type]


async def test_pages_and_positions_are_the_documented_ones(
    client: httpx.AsyncClient, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = _served(monkeypatch, MessagesPage, "_page")
    cid = await _conversation(client, alice, 7)
    base = f"{API}/conversations/{cid}/messages"
    hot, documented = await _both(client, f"{base}?limit=3", alice.headers)
    _same(hot, documented)
    page = hot.json()
    assert [m["seq"] for m in page["items"]] == [5, 6, 7]
    assert page["has_more"] is True
    for query in ("", "?limit=100", "?after=2&limit=2", "?before=4", "?after=7", "?after=0"):
        _same(*await _both(client, base + query, alice.headers))
    cursor = page["next_cursor"]
    _same(*await _both(client, f"{base}?limit=3&cursor={cursor}", alice.headers))
    upper = f"{API}/conversations/{cid.upper()}/messages"
    _same(*await _both(client, upper, alice.headers))
    # The plain route served every first request of a pair, never the second.
    assert len(served) == 9
    assert not any("ignored" in url.query for url in served)


async def test_errors_are_the_documented_ones(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    cid = await _conversation(client, alice, 2)
    base = f"{API}/conversations/{cid}/messages"
    cases = [
        (base, bob.headers),  # another user's conversation: 404
        (f"{API}/conversations/{uuid.uuid4()}/messages", alice.headers),
        (base, {}),  # not signed in
        (base, {"Authorization": "Bearer not-a-token"}),
        (base, {"Authorization": "Basic abc"}),
        (f"{base}?after=1&before=2", alice.headers),  # the service refuses the pair
        (f"{base}?cursor=forged", alice.headers),
    ]
    for path, headers in cases:
        hot, documented = await _both(client, path, headers)
        assert hot.status_code >= 400
        _same(hot, documented)


async def test_an_api_key_and_a_closed_session(client: httpx.AsyncClient, alice: Account) -> None:
    cid = await _conversation(client, alice, 2)
    base = f"{API}/conversations/{cid}/messages"
    created = await client.post(f"{API}/api-keys", json={"name": "k"}, headers=alice.headers)
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    hot, documented = await _both(client, base, key)
    assert hot.status_code == 200
    _same(hot, documented)
    logout = await client.post(f"{API}/auth/logout", json={}, headers=alice.headers)
    assert logout.status_code < 300, logout.text
    hot, documented = await _both(client, base, alice.headers)
    assert hot.status_code == 401
    _same(hot, documented)


def _without_identity(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("id", "seq", "created_at", "updated_at")}


async def test_appends_are_the_documented_ones(
    client: httpx.AsyncClient, alice: Account, bob: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = await _conversation(client, alice, 1)
    served = _served(monkeypatch, MessageAppend, "_append")
    path = f"{API}/conversations/{cid}/messages"
    message = {"role": "assistant", "content": "hi", "metadata": {"k": 1}, "usage": {"n": 2}}
    hot = await client.post(path, json=message, headers=alice.headers)
    documented = await client.post(f"{path}?ignored=1", json=message, headers=alice.headers)
    assert hot.status_code == documented.status_code == 201
    assert _without_identity(hot.json()) == _without_identity(documented.json())
    assert [hot.json()["seq"], documented.json()["seq"]] == [2, 3]
    assert hot.headers["location"] == f"{path}/{hot.json()['id']}"
    assert documented.headers["location"] == f"{path}/{documented.json()['id']}"
    assert hot.headers["content-type"] == documented.headers["content-type"]
    assert [url.path for url in served] == [path]
    refused = [
        (path, {"role": "user", "content": "x"}, bob.headers),  # another user's: 404
        (
            f"{API}/conversations/{uuid.uuid4()}/messages",
            {"role": "user", "content": "x"},
            alice.headers,
        ),
        (path, {"role": "user", "content": "x"}, {}),
        (path, {"role": "robot", "content": "x"}, alice.headers),  # FastAPI's 422
        (path, {"role": "user", "content": "x", "parent_id": str(uuid.uuid4())}, alice.headers),
        (path, {"role": "user", "content": "x", "metadata": {"k": "v" * 100_000}}, alice.headers),
    ]
    for target, body, headers in refused:
        hot = await client.post(target, json=body, headers=headers)
        joiner = "&" if "?" in target else "?"
        documented = await client.post(f"{target}{joiner}ignored=1", json=body, headers=headers)
        assert hot.status_code >= 400
        _same(hot, documented)
    raw = await client.post(
        path, content=b"{not json", headers={**alice.headers, "content-type": "application/json"}
    )
    assert raw.status_code == 422
    keyed = {**alice.headers, "Idempotency-Key": "k-1"}
    first = await client.post(path, json={"role": "user", "content": "once"}, headers=keyed)
    again = await client.post(path, json={"role": "user", "content": "once"}, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    read = (await client.get(f"{path}?limit=100", headers=alice.headers)).json()["items"]
    assert [m["content"] for m in read] == ["m0", "hi", "hi", "once"]
