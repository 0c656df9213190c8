"""The OpenAI Conversations API's wire shapes (``openai`` ``types/conversations/``) and the
``conv_…`` ids: a conversation's ``conv_`` id is its convstore id in hex, so both APIs name the
same conversation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, JsonValue, StringConstraints

from convstore.conversations.schemas import ConversationRead
from convstore.errors import NotFound
from convstore.items.schemas import MAX_ITEMS_PER_CALL, ItemPage, ItemRead
from convstore.items.views import openai_item
from convstore.kit.schemas import ReadSchema, Schema

CONVERSATION_ID = re.compile(r"^conv_([0-9a-f]{32})$")
INCLUDABLE = Literal[
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]
"""What ``include[]`` may name. convstore returns every item as it was stored, so each of
these is already included when the item carried it."""

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]
OpenAIMetadata = dict[MetadataKey, MetadataValue]
"""OpenAI's metadata: string pairs, keys of at most 64 characters (16 pairs: Limits)."""
InputItems = Annotated[
    list[dict[str, Any]],
    Field(
        max_length=MAX_ITEMS_PER_CALL,
        description="Items to add in order, all or none (OpenAI takes 20 per call; convstore "
        f"takes up to {MAX_ITEMS_PER_CALL:,}, so an agent's whole turn fits in one call).",
    ),
]


def wire_id(value: uuid.UUID) -> str:
    return f"conv_{value.hex}"


def parse_conversation_id(value: str) -> uuid.UUID:
    """The conversation a ``conv_…`` id (or its convstore UUID) names; NotFound otherwise."""
    match = CONVERSATION_ID.match(value)
    if match:
        return uuid.UUID(hex=match.group(1))
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("conversation not found") from None


class OpenAIConversationCreate(Schema):
    items: InputItems | None = None
    metadata: OpenAIMetadata | None = None


class OpenAIConversationUpdate(Schema):
    metadata: OpenAIMetadata | None = Field(
        description="Replaces the whole map; null clears it (required, as in OpenAI's API)."
    )


class OpenAIItemsCreate(Schema):
    items: InputItems


class Conversation(ReadSchema):
    id: str = Field(examples=["conv_0193d1a0c8f27c3e9d4b5a6f7e8d9c0b"])
    object: Literal["conversation"] = "conversation"
    created_at: int = Field(description="Unix seconds.")
    metadata: dict[str, JsonValue]


class ConversationDeleted(ReadSchema):
    id: str
    object: Literal["conversation.deleted"] = "conversation.deleted"
    deleted: bool = True


class ConversationList(ReadSchema):
    """Your conversations (OpenAI's API has no such list; the shape is its list shape)."""

    object: Literal["list"] = "list"
    data: list[Conversation]
    first_id: str = Field(description='The first item\'s id (`""` on an empty page).')
    last_id: str = Field(description="The last item's id: `after` for the next page.")
    has_more: bool


class ItemList(ReadSchema):
    """A page of items (``items.list``) or the items just added (``items.create``)."""

    object: Literal["list"] = "list"
    data: list[dict[str, JsonValue]] = Field(
        description="Items as stored (with `id`, `type`, and `status` where OpenAI's types "
        "require it): valid input items again."
    )
    first_id: str = Field(description='The first item\'s id (`""` on an empty page).')
    last_id: str = Field(description="The last item's id: `after` for the next page.")
    has_more: bool


def conversation(read: ConversationRead) -> Conversation:
    return Conversation.model_construct(
        id=wire_id(read.id),
        object="conversation",
        created_at=int(read.created_at.timestamp()),
        metadata=read.metadata,
    )


def conversation_list(reads: Sequence[ConversationRead], has_more: bool) -> ConversationList:
    data = [conversation(r) for r in reads]
    return ConversationList.model_construct(
        object="list",
        data=data,
        first_id=data[0].id if data else "",
        last_id=data[-1].id if data else "",
        has_more=has_more,
    )


def item(read: ItemRead) -> dict[str, Any]:
    return openai_item(read)


def item_list(page: ItemPage) -> ItemList:
    return ItemList.model_construct(
        object="list",
        data=[openai_item(r) for r in page.items],
        first_id=page.first_id or "",
        last_id=page.last_id or "",
        has_more=page.has_more,
    )
