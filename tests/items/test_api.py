"""``/api/v1/conversations/{id}/items``: the items of the library over HTTP, JSON-equal, with
problem bodies naming the field, 404 for another user's, and ``?key=`` on the list."""

from __future__ import annotations

import copy

import httpx

from tests.items.test_items import EVERY_KIND
from tests.support.api import Account

CONVS = "/api/v1/conversations"


async def _conversation(client: httpx.AsyncClient, who: Account, **body: object) -> str:
    made = await client.post(CONVS, json=body, headers=who.headers)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_items_round_trip_over_http(client: httpx.AsyncClient, alice: Account) -> None:
    conv = await _conversation(client, alice)
    added = await client.post(
        f"{CONVS}/{conv}/items", json={"items": copy.deepcopy(EVERY_KIND)}, headers=alice.headers
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert [i["item"] for i in body["items"]] == EVERY_KIND
    assert body["first_id"] == body["items"][0]["id"]
    assert body["last_id"] == body["items"][-1]["id"]
    listed = await client.get(f"{CONVS}/{conv}/items?limit=100", headers=alice.headers)
    assert [i["item"] for i in listed.json()["items"]] == EVERY_KIND
    newest = await client.get(f"{CONVS}/{conv}/items?limit=2&order=desc", headers=alice.headers)
    assert [i["item"] for i in newest.json()["items"]] == EVERY_KIND[::-1][:2]
    assert newest.json()["has_more"] is True
    one = body["items"][4]
    got = await client.get(f"{CONVS}/{conv}/items/{one['id']}", headers=alice.headers)
    assert got.json()["item"] == EVERY_KIND[4]
    # The same rows through the message API carry the items too.
    messages = await client.get(f"{CONVS}/{conv}/messages?limit=100", headers=alice.headers)
    assert [m["item"] for m in messages.json()["items"]] == EVERY_KIND
    gone = await client.delete(f"{CONVS}/{conv}/items/{one['id']}", headers=alice.headers)
    assert gone.status_code == 204
    missing = await client.get(f"{CONVS}/{conv}/items/{one['id']}", headers=alice.headers)
    assert missing.status_code == 404
    cleared = await client.delete(f"{CONVS}/{conv}/items", headers=alice.headers)
    assert cleared.status_code == 204
    empty = await client.get(f"{CONVS}/{conv}/items", headers=alice.headers)
    assert empty.json() == {"items": [], "has_more": False, "first_id": None, "last_id": None}


async def test_bad_items_are_422_naming_the_field(
    client: httpx.AsyncClient, alice: Account
) -> None:
    conv = await _conversation(client, alice)
    bad = [{"role": "user", "content": "fine"}, {"type": "function_call", "call_id": "c"}]
    answer = await client.post(f"{CONVS}/{conv}/items", json={"items": bad}, headers=alice.headers)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in answer.json()["errors"]] == ["items.1.name"]
    not_item = await client.post(
        f"{CONVS}/{conv}/items", json={"items": ["text"]}, headers=alice.headers
    )
    assert not_item.status_code == 422
    after = await client.get(f"{CONVS}/{conv}/items?after=nope", headers=alice.headers)
    assert after.status_code == 422
    assert [e["field"] for e in after.json()["errors"]] == ["after"]
    assert (await client.get(f"{CONVS}/{conv}/items", headers=alice.headers)).json()["items"] == []


async def test_a_taken_item_id_is_409(client: httpx.AsyncClient, alice: Account) -> None:
    conv = await _conversation(client, alice)
    item = {"type": "reasoning", "id": "rs_1", "summary": []}
    first = await client.post(
        f"{CONVS}/{conv}/items", json={"items": [item]}, headers=alice.headers
    )
    assert first.status_code == 201
    again = await client.post(
        f"{CONVS}/{conv}/items", json={"items": [item]}, headers=alice.headers
    )
    assert again.status_code == 409


async def test_another_users_items_are_404(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    conv = await _conversation(client, alice)
    added = await client.post(
        f"{CONVS}/{conv}/items",
        json={"items": [{"role": "user", "content": "mine"}]},
        headers=alice.headers,
    )
    item_id = added.json()["items"][0]["id"]
    for method, path, body in (
        ("GET", f"{CONVS}/{conv}/items", None),
        ("POST", f"{CONVS}/{conv}/items", {"items": [{"role": "user", "content": "x"}]}),
        ("DELETE", f"{CONVS}/{conv}/items", None),
        ("GET", f"{CONVS}/{conv}/items/{item_id}", None),
        ("DELETE", f"{CONVS}/{conv}/items/{item_id}", None),
    ):
        answer = await client.request(method, path, json=body, headers=bob.headers)
        assert answer.status_code == 404, (method, path)
    listed = await client.get(f"{CONVS}/{conv}/items", headers=alice.headers)
    assert len(listed.json()["items"]) == 1


async def test_find_a_conversation_by_key(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    conv = await _conversation(client, alice, key="agent-session-7")
    taken = await client.post(CONVS, json={"key": "agent-session-7"}, headers=alice.headers)
    assert taken.status_code == 409
    found = await client.get(f"{CONVS}?key=agent-session-7", headers=alice.headers)
    assert [c["id"] for c in found.json()["items"]] == [conv]
    assert found.json()["items"][0]["key"] == "agent-session-7"
    theirs = await client.get(f"{CONVS}?key=agent-session-7", headers=bob.headers)
    assert theirs.json()["items"] == []
