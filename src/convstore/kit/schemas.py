"""The shared Pydantic base and the constrained types every domain schema reuses."""

from __future__ import annotations

import math
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict

from convstore.kit.jsoninput import MAX_JSON_DEPTH, nesting_exceeds

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_DISALLOWED_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
"""NUL and the other C0 controls except tab, newline and carriage return; DEL; lone surrogates."""
_DISALLOWED_LINE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
"""As above, and no line breaks or tabs either: titles are one line."""


def check_text(value: str) -> str:
    """Refuse NUL bytes, control characters and unpaired surrogates (text stays as given)."""
    if (bad := _DISALLOWED_TEXT.search(value)) is not None:
        raise ValueError(f"contains a disallowed character U+{ord(bad.group()):04X}")
    return value


def check_identifier(value: str) -> str:
    """One line kept exactly as given (an issuer's subject): no control characters, nothing
    trimmed, since two identifiers differing in outer spaces are two identifiers."""
    if (bad := _DISALLOWED_LINE.search(value)) is not None:
        raise ValueError(f"contains a disallowed character U+{ord(bad.group()):04X}")
    return value


def check_line(value: str) -> str:
    """A single line of text: not blank, no control characters. Outer whitespace is trimmed."""
    value = check_identifier(value).strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def clean_line(value: str, max_chars: int) -> str:
    """Text kept for information only, from a request header (a ``User-Agent``): each character
    :func:`check_line` refuses becomes U+FFFD, and the text is cut to ``max_chars``. Refusing a
    sign-in over such a header would help nobody; storing it as sent cannot work (NUL)."""
    return _DISALLOWED_LINE.sub("\ufffd", value[:max_chars])


def check_nesting(value: T) -> T:
    """Refuse a JSON value nested deeper than ``MAX_JSON_DEPTH`` levels. Run before the value
    is validated: validation itself recurses, and gives up around 255 levels with an error
    naming every level in between."""
    if nesting_exceeds(value):
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return value


_MAX_INT_DIGITS = sys.get_int_max_str_digits()
_MAX_INT_BITS = int(_MAX_INT_DIGITS * math.log2(10)) if _MAX_INT_DIGITS else math.inf
"""Integers up to this many bits have at most ``_MAX_INT_DIGITS`` digits (0: no limit)."""


def check_json(value: T) -> T:
    """Apply :func:`check_text` to every string (keys included) of a JSON value, and refuse
    non-finite numbers: PostgreSQL's JSONB refuses NUL, unpaired surrogates, NaN and infinities
    (SQLite would store ``null``), and the API refuses them on both databases. Integers Python
    will not write out as text (more than ``sys.get_int_max_str_digits()`` digits) cannot be
    stored as JSON either."""
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite (no NaN or Infinity)")
    elif isinstance(value, int) and abs(value).bit_length() > _MAX_INT_BITS:
        raise ValueError(f"integers must have at most {_MAX_INT_DIGITS} digits")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key)
            check_json(item)
    elif isinstance(value, list):
        for item in value:
            check_json(item)
    return value


def to_utc(value: datetime) -> datetime:
    """An aware datetime in UTC; one that leaves the calendar once converted is refused."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the supported range of dates") from None


UTCDateTime = Annotated[AwareDatetime, AfterValidator(to_utc)]
"""An input timestamp: must carry a UTC offset; converted to UTC."""

SafeText = Annotated[str, AfterValidator(check_text)]
"""Free text (message content, descriptions): stored exactly as given once it is accepted."""


class Schema(BaseModel):
    """Base of every convstore schema: reads from attributes, refuses unknown fields."""

    model_config = ConfigDict(from_attributes=True, extra="forbid", populate_by_name=True)


class ReadSchema(BaseModel):
    """Base of every output model: built from rows or objects, ignoring columns it does not show."""

    model_config = ConfigDict(from_attributes=True, extra="ignore", populate_by_name=True)


class IDSchema(ReadSchema):
    id: uuid.UUID


class TimestampedSchema(ReadSchema):
    created_at: datetime
    updated_at: datetime


_FIELDS: dict[type[BaseModel], frozenset[str]] = {}
_set = object.__setattr__


def trusted(cls: type[M], values: dict[str, Any]) -> M:
    """``cls`` holding ``values`` (every field, each already of its type) without validation:
    for rows convstore wrote itself, on the hot read path (docs/performance.md).

    What ``model_construct`` ends with, without its per-field alias and default handling, and
    the one place that writes Pydantic's instance internals (``tests/test_read_models.py``
    compares it with ``model_construct``). The first build of each class checks that
    ``values`` names exactly the class's fields, so a builder that misses a new field fails
    at once rather than at serialisation.
    """
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = frozenset(cls.model_fields)
        if set(values) != fields:
            missing, extra = sorted(fields - set(values)), sorted(set(values) - fields)
            raise TypeError(f"{cls.__name__}: fields not built {missing}, unknown {extra}")
        _FIELDS[cls] = fields
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", set(fields))
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model
