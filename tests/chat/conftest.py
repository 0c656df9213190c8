"""Chat fixtures: an app whose assistant is the ``openai`` provider talking to a local fake
Chat Completions server (a real HTTP server on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.api import api_settings, client_for, running_app
from tests.support.fake_llm import FakeModel
from tests.support.live import serving


@pytest.fixture
async def fake_model() -> AsyncIterator[tuple[FakeModel, str]]:
    model = FakeModel()
    async with serving(model.app()) as url:
        yield model, f"{url}/v1"


@pytest.fixture
async def model_app(database_url: str, fake_model: tuple[FakeModel, str]) -> AsyncIterator[FastAPI]:
    _, base_url = fake_model
    async with running_app(openai_settings(database_url, base_url)) as app:
        yield app


@pytest.fixture
async def model_client(model_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(model_app) as c:
        yield c


def openai_settings(database_url: str, base_url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "assistant_provider": "openai",
        "openai_base_url": base_url,
        "openai_api_key": "test",
        "openai_model": "fake-model",
        "openai_max_retries": 0,
        "openai_timeout_seconds": 5,
    }
    values.update(overrides)
    return api_settings(database_url, **values)
