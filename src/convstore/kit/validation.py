"""Turning bad input into ``InvalidInput`` errors that name the field, before any write."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from convstore.config import Limits
from convstore.errors import FieldError, InvalidInput

M = TypeVar("M", bound=BaseModel)


def _field_errors(exc: ValidationError, prefix: str) -> list[FieldError]:
    errors = []
    for err in exc.errors(include_url=False):
        parts = [str(p) for p in err["loc"]]
        message = err["msg"].removeprefix("Value error, ")
        if not parts and ": " in message:
            # Cross-field rules raise "field: reason" (pydantic gives them no location).
            field, _, message = message.partition(": ")
            parts = [field]
        path = ".".join([prefix, *parts] if prefix else parts) or prefix or "body"
        errors.append(FieldError(path, message, err["type"]))
    return errors


def parse(model: type[M], data: Any, *, prefix: str = "") -> M:
    """Validate ``data`` (a mapping or a model instance) as ``model``.

    Raises:
        InvalidInput: naming every rejected field, prefixed with ``prefix`` when given.
    """
    if isinstance(data, model):
        data = data.model_dump(exclude_unset=True, by_alias=False)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_field_errors(exc, prefix)) from None


def check_metadata(metadata: Mapping[str, Any] | None, limits: Limits, field: str) -> None:
    """Refuse metadata with too many keys, or keys/values over the configured sizes."""
    if metadata is None:
        return
    if len(metadata) > limits.max_metadata_keys:
        raise InvalidInput(f"at most {limits.max_metadata_keys} keys", field=field)
    for key, value in metadata.items():
        if not key or len(key) > limits.max_metadata_key_chars:
            raise InvalidInput(
                f"keys must be 1 to {limits.max_metadata_key_chars} characters", field=field
            )
        size = len(value) if isinstance(value, str) else len(_dumps(value))
        if size > limits.max_metadata_value_chars:
            raise InvalidInput(
                f"value of {key!r} is longer than {limits.max_metadata_value_chars} characters",
                field=f"{field}.{key}",
            )


def check_size(value: Any, max_chars: int, field: str) -> None:
    """Refuse a JSON value whose encoding is longer than ``max_chars``."""
    if value is not None and len(_dumps(value)) > max_chars:
        raise InvalidInput(f"longer than {max_chars} characters once encoded", field=field)


def check_bytes(value: Any, max_bytes: int, field: str) -> None:
    """Refuse a JSON value whose UTF-8 encoding is larger than ``max_bytes``."""
    if value is not None and len(_dumps(value).encode()) > max_bytes:
        raise InvalidInput(f"larger than {max_bytes} bytes once encoded", field=field)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
