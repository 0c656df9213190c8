"""API key input and output models. The secret appears in exactly one of them, once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from convstore.kit.schemas import ReadSchema, Schema, UTCDateTime, check_line

API_KEY_NAME_MAX_LENGTH = 100

ApiKeyName = Annotated[
    str, Field(min_length=1, max_length=API_KEY_NAME_MAX_LENGTH), AfterValidator(check_line)
]
"""What the key is for ("agent worker"): one line under the same rules as a title."""


class ApiKeyCreate(Schema):
    name: ApiKeyName
    expires_at: UTCDateTime | None = Field(
        default=None, description="When the key stops working (in the future); null: never."
    )


class ApiKeyRead(ReadSchema):
    """A key as lists show it: never the secret, only its first characters."""

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The first 12 characters of the key.")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(
        description="The last request made with the key (updated at most once a minute)."
    )


class ApiKeyCreated(ReadSchema):
    """The answer to creating a key: the only time the secret is shown."""

    id: uuid.UUID
    name: str
    key: str = Field(description="The secret: send it as `Authorization: Bearer <key>`.")
    prefix: str
    created_at: datetime
    expires_at: datetime | None
