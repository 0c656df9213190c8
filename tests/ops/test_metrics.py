"""``/metrics``: Prometheus' text format, parsed with prometheus-client's own parser."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from convstore import Settings
from tests.http.helpers import API
from tests.support.api import api_settings, client_for, register, running_app

TOKEN = "metrics-token-0123456789"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


async def scrape(
    client: httpx.AsyncClient, **headers: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = await client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return api_settings(f"sqlite:///{tmp_path / 'metrics.db'}", **overrides)


async def test_requests_chat_turns_messages_and_the_pool_are_counted(tmp_path: Path) -> None:
    async with running_app(_settings(tmp_path)) as app, client_for(app) as client:
        before = await scrape(client)
        alice = await register(client)
        conv = await client.post(f"{API}/conversations", json={"title": "m"}, headers=alice.headers)
        assert conv.status_code == 201
        for i in range(3):
            appended = await client.post(
                f"{conv.headers['location']}/messages",
                json={"role": "user", "content": f"m{i}"},
                headers=alice.headers,
            )
            assert appended.status_code == 201
        missing = await client.get(f"{API}/conversations/{'0' * 32}", headers=alice.headers)
        assert missing.status_code in (404, 422)
        turn = await client.post(
            f"{API}/chat/messages", json={"content": "add buy milk"}, headers=alice.headers
        )
        assert turn.status_code == 201, turn.text
        after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = f"{API}/conversations/{{conversation_id}}/messages"
    assert delta("convstore_http_requests_total", method="POST", route=route, status="201") == 3
    assert (
        delta(
            "convstore_http_requests_total",
            method="POST",
            route=f"{API}/conversations",
            status="201",
        )
        == 1
    )
    assert delta("convstore_http_request_duration_seconds_count", method="POST", route=route) == 3
    assert delta("convstore_messages_appended_total", role="user") == 4  # 3 and the chat turn's
    assert delta("convstore_messages_appended_total", role="assistant") >= 1
    assert delta("convstore_chat_turns_total", provider="builtin", outcome="complete") == 1
    assert delta("convstore_chat_turn_duration_seconds_count", provider="builtin") == 1
    assert value(after, "convstore_db_pool_size") >= 10
    assert value(after, "convstore_db_pool_connections_in_use") >= 0
    assert ("convstore_db_pool_overflow", frozenset()) in after
    # No raw path (with its ids) becomes a label: only route templates.
    routes = {
        dict(labels).get("route")
        for name, labels in after
        if name == "convstore_http_requests_total"
    }
    assert not any(r and conv.json()["id"] in r for r in routes)


async def test_a_metrics_token_is_required_when_set(tmp_path: Path) -> None:
    async with (
        running_app(_settings(tmp_path, metrics_token=TOKEN)) as app,
        client_for(app) as client,
    ):
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert "convstore_http_requests_total" not in wrong.text
        await scrape(client, Authorization=f"Bearer {TOKEN}")


async def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    async with (
        running_app(_settings(tmp_path, metrics_enabled=False)) as app,
        client_for(app) as client,
    ):
        assert (await client.get("/metrics")).status_code == 404
