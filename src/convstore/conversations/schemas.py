"""Conversation and message input/output models.

Sizes that operators may tune (content length, metadata) are checked by the service against
``Limits``; the fixed shapes (roles, tool calls, titles) are checked here.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

from convstore.kit.jsoninput import JSONTooDeep, loads
from convstore.kit.schemas import (
    IDSchema,
    SafeText,
    Schema,
    TimestampedSchema,
    check_identifier,
    check_json,
    check_line,
    check_nesting,
    check_text,
)

CONVERSATION_TITLE_MAX_LENGTH = 255
MAX_SEQ = 2**31 - 1
"""The largest message ``seq`` (an ``integer`` column: 32 bits on PostgreSQL). A position or
cursor beyond it cannot name a message, and is refused before it reaches the database."""
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"

ConversationTitle = Annotated[
    str, Field(min_length=1, max_length=CONVERSATION_TITLE_MAX_LENGTH), AfterValidator(check_line)
]
Role = Literal["user", "assistant", "system", "tool"]
Status = Literal["sent", "streaming", "complete", "error"]
ToolCallId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
Metadata = Annotated[
    dict[str, JsonValue], BeforeValidator(check_nesting), AfterValidator(check_json)
]
"""Free-form key/value pairs (``attributes`` in the database), bounded by ``Limits``."""
SafeJson = Annotated[JsonValue, BeforeValidator(check_nesting), AfterValidator(check_json)]
"""Any JSON value the databases can store: at most ``MAX_JSON_DEPTH`` levels, storable text."""
JsonObject = Annotated[
    dict[str, JsonValue], BeforeValidator(check_nesting), AfterValidator(check_json)
]

_METADATA_FIELD: Any = Field(
    default_factory=dict, validation_alias=AliasChoices("metadata", "attributes")
)


class ToolCall(Schema):
    """A function call the assistant asked for.

    Accepts the flat form ``{id, name, arguments}`` and the Chat Completions form
    ``{id, type: "function", function: {name, arguments}}``; ``arguments`` may be a JSON
    object or a string holding one.
    """

    id: ToolCallId
    type: Literal["function"] = "function"
    name: Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]
    arguments: JsonObject

    @model_validator(mode="before")
    @classmethod
    def _flatten_openai_form(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("function"), dict):
            flat = {k: v for k, v in data.items() if k != "function"}
            flat.update(data["function"])
            return flat
        return data

    @field_validator("arguments", mode="before")
    @classmethod
    def _parse_arguments(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = loads(value)
            except JSONTooDeep as exc:
                raise ValueError(exc.msg) from None
            except ValueError:
                raise ValueError("must be a JSON object (the string is not valid JSON)") from None
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object")
        return value


class ToolResult(Schema):
    """The outcome of one tool call, kept with the message that reports it."""

    tool_call_id: ToolCallId
    output: SafeJson
    is_error: bool = False


class MessageCreate(Schema):
    """A message to append. Role rules: only ``assistant`` carries ``tool_calls``; a ``tool``
    message must name the ``tool_call_id`` it answers; ``user`` and ``system`` content is not
    blank. Content is stored exactly as given (escaping is the renderer's job)."""

    role: Role
    content: SafeText = ""
    status: Status | None = None
    tool_calls: list[ToolCall] | None = None
    tool_results: list[ToolResult] | None = None
    tool_call_id: ToolCallId | None = None
    metadata: Metadata = _METADATA_FIELD
    parent_id: uuid.UUID | None = None
    usage: JsonObject | None = None

    @model_validator(mode="after")
    def _role_rules(self) -> MessageCreate:
        if self.tool_calls == []:
            self.tool_calls = None
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("tool_calls: only assistant messages carry tool calls")
        if self.role == "tool" and self.tool_call_id is None:
            raise ValueError("tool_call_id: a tool message must name the call it answers")
        if self.role != "tool" and self.tool_call_id is not None:
            raise ValueError("tool_call_id: only tool messages answer a tool call")
        if self.role in ("user", "system") and not self.content.strip():
            raise ValueError("content: must not be blank")
        _check_unique_call_ids(self.tool_calls)
        return self

    def default_status(self) -> Status:
        """``sent`` for user and system input, ``complete`` for assistant and tool output."""
        return self.status or ("sent" if self.role in ("user", "system") else "complete")


class MessageUpdate(Schema):
    """Every field optional; only the fields given change. The role never changes."""

    content: SafeText | None = None
    status: Status | None = None
    tool_calls: list[ToolCall] | None = None
    tool_results: list[ToolResult] | None = None
    metadata: Metadata | None = Field(
        default=None, validation_alias=AliasChoices("metadata", "attributes")
    )
    usage: JsonObject | None = None

    @model_validator(mode="after")
    def _unique_calls(self) -> MessageUpdate:
        _check_unique_call_ids(self.tool_calls)
        return self


def _check_unique_call_ids(calls: list[ToolCall] | None) -> None:
    ids = [call.id for call in calls or ()]
    if len(ids) != len(set(ids)):
        raise ValueError("tool_calls: every tool call id must be unique")


ConversationKey = Annotated[
    str, Field(min_length=1, max_length=255), AfterValidator(check_identifier)
]
"""An application's own name for a conversation (a session id), kept exactly as given."""


FIRST_MESSAGES_MAX = 1_000
"""At most this many messages come with a new conversation (``ConversationCreate.messages``)."""


class ConversationCreate(Schema):
    title: ConversationTitle | None = None
    key: ConversationKey | None = Field(
        default=None,
        description="Your own unique name for it (e.g. an agent's session id): unique among "
        "your live conversations; find it again with `?key=`.",
    )
    metadata: Metadata = _METADATA_FIELD
    messages: list[MessageCreate] = Field(
        default_factory=list,
        max_length=FIRST_MESSAGES_MAX,
        description="Its first messages (seq 1, 2, …), stored with it in one unit: the "
        "conversation and all of them, or nothing. Each is a message as appended, without a "
        "`parent_id` (there is nothing yet to answer); without a title, the first user "
        "message gives one.",
    )


class ConversationUpdate(Schema):
    """Every field optional; only the fields given change. ``title=None`` clears the title."""

    title: ConversationTitle | None = None
    metadata: Metadata | None = Field(
        default=None, validation_alias=AliasChoices("metadata", "attributes")
    )


class ConversationRead(IDSchema, TimestampedSchema):
    title: str | None
    key: str | None = None
    metadata: Metadata = _METADATA_FIELD
    messages_count: int = Field(description="Messages ever appended; the last message's seq.")
    last_message_at: datetime | None
    deleted_at: datetime | None = None


class MessageRead(IDSchema, TimestampedSchema):
    conversation_id: uuid.UUID
    seq: int = Field(
        description="Position in the conversation: appends take 1, 2, 3… without gaps "
        "(a deleted message leaves its number unused)."
    )
    role: Role
    content: str
    status: Status
    tool_calls: list[ToolCall] | None = None
    tool_results: list[ToolResult] | None = None
    tool_call_id: str | None = None
    metadata: Metadata = _METADATA_FIELD
    parent_id: uuid.UUID | None = None
    usage: JsonObject | None = None
    item_type: str | None = Field(
        default=None,
        description="For a message added as an item: the item's type (`function_call`…).",
    )
    item_id: str | None = Field(default=None, description="For an item: its id.")
    item: dict[str, JsonValue] | None = Field(
        default=None, description="For an item: the item exactly as it was added."
    )


__all__ = [
    "ConversationCreate",
    "ConversationRead",
    "ConversationUpdate",
    "MessageCreate",
    "MessageRead",
    "MessageUpdate",
    "ToolCall",
    "ToolResult",
    "check_text",
]
