"""JSON from outside (request bodies, WebSocket frames, tool-call arguments): decoded strictly,
and never nested deeper than :data:`MAX_JSON_DEPTH`.

Python's ``json`` recurses once per level and raises ``RecursionError`` (not a decode error)
about 1,000 levels down; what decodes still has to be validated, stored, read back and
serialised, each a recursion of its own. One bound, well below all of them, keeps every one of
those steps safe and every refusal a decode error that names the input.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 64
"""The most levels of arrays and objects one JSON document (or stored JSON value) may nest,
the outermost counting as one: ``{"a": [1]}`` is 2 levels deep."""


class JSONTooDeep(json.JSONDecodeError):
    """The document nests arrays and objects deeper than :data:`MAX_JSON_DEPTH`."""

    def __init__(self, doc: str) -> None:
        super().__init__(f"nested deeper than {MAX_JSON_DEPTH} levels", doc, 0)


def loads(data: str | bytes | bytearray) -> Any:
    """Decode a JSON document sent by a client.

    Bytes must be UTF-8 (a byte order mark is allowed, as RFC 8259 lets parsers do); the other
    encodings ``json.loads`` guesses from bytes are refused.

    Raises:
        json.JSONDecodeError: not UTF-8, not JSON, a number Python refuses to convert (more
            than 4,300 digits), or (:class:`JSONTooDeep`) too deep. It is a ``ValueError``,
            and FastAPI answers it as an invalid body.
    """
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError(
                f"not valid UTF-8 (byte {exc.start} cannot be decoded)", "", 0
            ) from None
    else:
        text = data
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONTooDeep(text) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer of more than sys.get_int_max_str_digits() digits
        raise json.JSONDecodeError(str(exc), text, 0) from None
    # No document with at most MAX_JSON_DEPTH opening brackets can be deeper than that: only
    # documents with more are walked.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and nesting_exceeds(value):
        raise JSONTooDeep(text)
    return value


def nesting_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests lists, tuples and dicts more than ``limit`` levels deep.

    Level by level, without recursion, and stopping at the first level past ``limit``: the
    cost is at most one visit per container, whatever the depth.
    """
    level = [value] if isinstance(value, list | tuple | dict) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            below.extend(item for item in items if isinstance(item, list | tuple | dict))
        level = below
    return False
