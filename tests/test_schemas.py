"""The schema contracts: read models never expose secrets; payloads and frames validate."""

from __future__ import annotations

import importlib
import pkgutil
import uuid

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

import convstore
from convstore.assistant.schemas import (
    ChunkFrame,
    DoneFrame,
    ErrorFrame,
    Frame,
    StreamFrame,
    ToolCallFrame,
    ToolResultFrame,
)
from convstore.auth.schemas import (
    ExternalLoginRequest,
    LoginRequest,
    PasswordResetConfirm,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
)
from convstore.kit.schemas import ReadSchema
from convstore.kit.types import utc_now

SECRET_WORDS = ("password", "hash", "secret")


def _all_models() -> list[type[BaseModel]]:
    for info in pkgutil.walk_packages(convstore.__path__, "convstore."):
        if info.name.endswith("schemas"):
            importlib.import_module(info.name)

    def walk(cls: type[BaseModel]) -> list[type[BaseModel]]:
        out = []
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("convstore."):
                out.append(sub)
            out.extend(walk(sub))
        return out

    return walk(BaseModel)


def test_no_read_model_carries_a_password_or_a_hash() -> None:
    read_models = [m for m in _all_models() if issubclass(m, ReadSchema)]
    assert len(read_models) >= 8
    leaks = [
        f"{m.__name__}.{name}"
        for m in read_models
        for name in m.model_fields
        if any(word in name for word in SECRET_WORDS)
    ]
    assert leaks == []


def test_input_models_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        RegisterRequest.model_validate(
            {"email": "a@example.com", "password": "long enough", "role": "admin"}
        )


def test_password_is_not_in_the_repr() -> None:
    request = RegisterRequest(email="a@example.com", password="hunter2hunter2")
    assert "hunter2" not in repr(request)


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (RegisterRequest, {"email": "not-an-email", "password": "long enough"}, "email"),
        (RegisterRequest, {"email": "a@example.com", "password": "short"}, "password"),
        (RegisterRequest, {"email": "a@example.com", "password": "x" * 129}, "password"),
        (LoginRequest, {"email": "a@example.com", "password": ""}, "password"),
        (RefreshRequest, {"refresh_token": "short"}, "refresh_token"),
        (RefreshRequest, {"refresh_token": "has spaces in it, lots"}, "refresh_token"),
        (PasswordResetConfirm, {"token": "t" * 43, "new_password": "1234567"}, "new_password"),
        (ExternalLoginRequest, {"id_token": "e" * 8193}, "id_token"),
    ],
)
def test_auth_payloads_name_the_bad_field(
    model: type[BaseModel], data: dict[str, str], field: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    assert [e["loc"][0] for e in exc.value.errors()] == [field]


def test_login_email_is_normalised() -> None:
    assert LoginRequest(email=" Ann@Example.COM ", password="x").email == "ann@example.com"


def test_token_pair_shape() -> None:
    pair = TokenPair(access_token="a", refresh_token="r", expires_in=900)
    assert pair.model_dump() == {
        "access_token": "a",
        "refresh_token": "r",
        "token_type": "bearer",
        "expires_in": 900,
    }


def test_stream_frames_are_told_apart_by_type() -> None:
    now = utc_now()
    conv, msg = uuid.uuid4(), uuid.uuid4()
    adapter: TypeAdapter[Frame] = TypeAdapter(StreamFrame)
    chunk = adapter.validate_python(
        {
            "type": "chunk",
            "id": 1,
            "conversation_id": conv,
            "message_id": msg,
            "index": 0,
            "delta": "Hi",
        }
    )
    assert isinstance(chunk, ChunkFrame)
    message = {
        "id": msg,
        "conversation_id": conv,
        "seq": 2,
        "role": "assistant",
        "content": "Hi",
        "status": "complete",
        "created_at": now,
        "updated_at": now,
    }
    done = adapter.validate_json(
        DoneFrame.model_validate({"id": 2, "message": message}).model_dump_json()
    )
    assert isinstance(done, DoneFrame)
    assert done.message.seq == 2
    error = adapter.validate_python({"type": "error", "code": "provider_timeout", "detail": "x"})
    assert isinstance(error, ErrorFrame)
    assert error.retryable
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "chunk", "delta": "x"})
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "progress"})
    call = adapter.validate_python(
        {
            "type": "tool_call",
            "id": 3,
            "conversation_id": conv,
            "message_id": msg,
            "call_id": "call_1",
            "name": "add_task",
            "arguments": {"title": "milk"},
        }
    )
    assert isinstance(call, ToolCallFrame)
    result = adapter.validate_python(
        {
            "type": "tool_result",
            "id": 4,
            "conversation_id": conv,
            "message_id": msg,
            "call_id": "call_1",
            "name": "add_task",
            "ok": False,
            "error": "title: too long",
        }
    )
    assert isinstance(result, ToolResultFrame)
    assert result.result is None
