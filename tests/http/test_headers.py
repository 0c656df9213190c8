"""Response headers that hold for every answer: request ids, content sniffing, caching of
tokens, and the API documents' switch."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.http.helpers import API
from tests.support.api import register


@pytest.mark.parametrize(
    ("given", "echoed"),
    [
        pytest.param("req-7f3a", True, id="plain"),
        pytest.param("x" * 128, True, id="at-limit"),
        pytest.param("x" * 129, False, id="too-long"),
        pytest.param("a\x01b", False, id="control"),
        pytest.param("a\x7fb", False, id="del"),
        pytest.param("a b", False, id="space"),
    ],
)
async def test_a_request_id_is_echoed_only_when_it_is_visible_ascii(
    client: httpx.AsyncClient, given: str, echoed: bool
) -> None:
    """A client's ``X-Request-ID`` goes back into a response header: anything a header may not
    carry (controls, which an HTTP server refuses to send) is replaced by a fresh id."""
    response = await client.get("/healthz", headers={"X-Request-ID": given})
    assert response.status_code == 200
    answered = response.headers["x-request-id"]
    if echoed:
        assert answered == given
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", answered), answered


def assert_not_stored(response: httpx.Response) -> None:
    """RFC 6749 §5.1: a response carrying tokens must not be cached."""
    assert response.status_code == 200, response.text
    assert "access_token" in response.json()
    assert response.headers["cache-control"] == "no-store", response.headers
    assert response.headers["pragma"] == "no-cache", response.headers


async def test_token_responses_are_not_cacheable(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    creds = {"email": alice.email, "password": alice.password}
    assert_not_stored(await client.post(f"{API}/auth/login", json=creds))
    form = {"username": alice.email, "password": alice.password}
    assert_not_stored(await client.post(f"{API}/auth/login", data=form))
    assert_not_stored(
        await client.post(f"{API}/auth/refresh", json={"refresh_token": alice.refresh_token})
    )
    changed = await client.post(
        f"{API}/auth/password/change",
        json={"current_password": alice.password, "new_password": "another long passphrase"},
        headers=alice.headers,
    )
    assert_not_stored(changed)
