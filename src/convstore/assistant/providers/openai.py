"""The ``openai`` provider: any OpenAI-compatible Chat Completions endpoint (OpenAI, Ollama,
vLLM…) through the official SDK, with function calling, streaming and a bounded tool loop."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from typing import Any, cast

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from convstore.assistant.protocol import (
    AssistantEvent,
    ProviderError,
    ProviderTimeout,
    TextDelta,
    ToolRunner,
    Turn,
    Usage,
)
from convstore.assistant.tools import tool_schemas
from convstore.config import Settings
from convstore.conversations.schemas import MessageRead
from convstore.kit import metrics

log = logging.getLogger("convstore.assistant")
PROVIDER_FAILED = "the assistant provider failed; retry"
"""What a client is told when the model provider fails (the details are logged)."""


def chat_messages(system_prompt: str, history: list[MessageRead]) -> list[dict[str, Any]]:
    """The stored history in Chat Completions form.

    An assistant message that carries tool calls and their results expands to the assistant's
    call message, one ``tool`` message per result, and the final text. Rows added as items
    (docs/schema.md, "Items") read as the items they are: consecutive ``function_call`` items
    become one assistant message with those tool calls, a ``function_call_output`` a ``tool``
    message, a ``message`` item its role and text; ``reasoning`` and kinds Chat Completions has
    no place for are left out.
    """
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}]
    merging = False  # the last message holds function_call items: the next one joins it
    for msg in history:
        if msg.item_type is not None and msg.item_type != "message":
            joined = _item_message(messages, msg, merging)
            merging = joined if msg.item_type != "reasoning" else merging
            continue
        merging = False
        if msg.role == "assistant" and msg.tool_calls:
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        _tool_call(c.id, c.name, json.dumps(c.arguments)) for c in msg.tool_calls
                    ],
                }
            )
            answered = {r.tool_call_id: r for r in msg.tool_results or ()}
            for call in msg.tool_calls:
                result = answered.get(call.id)
                output = result.output if result else {"error": "no result recorded"}
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": json.dumps(output)}
                )
            if msg.content:
                messages.append({"role": "assistant", "content": msg.content})
        elif msg.role == "tool":
            messages.append(
                {"role": "tool", "tool_call_id": msg.tool_call_id, "content": msg.content}
            )
        else:
            messages.append({"role": msg.role, "content": msg.content})
    return messages


def _tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _item_message(messages: list[dict[str, Any]], msg: MessageRead, merging: bool) -> bool:
    """Add an item row other than a message to ``messages``; True when it was a function call
    (so that a function call right after it joins the same assistant message)."""
    item = msg.item or {}
    if msg.item_type == "function_call":
        call_id, name = item.get("call_id"), item.get("name")
        if not isinstance(call_id, str) or not isinstance(name, str):
            return False
        arguments = item.get("arguments")
        call = _tool_call(call_id, name, arguments if isinstance(arguments, str) else "{}")
        if merging:
            messages[-1]["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        return True
    if msg.item_type == "function_call_output":
        call_id = item.get("call_id")
        if isinstance(call_id, str):
            output = item.get("output")
            content = output if isinstance(output, str) else json.dumps(output)
            messages.append({"role": "tool", "tool_call_id": call_id, "content": content})
    return False


def system_prompt(prompt: str, turn: Turn) -> str:
    """The configured prompt and the user's current local time, so that "tomorrow" or
    "friday" become the right ``due_at`` (with the user's UTC offset)."""
    local = turn.now.astimezone(turn.tz)
    return (
        f"{prompt}\n\nNow it is {local:%A %Y-%m-%d %H:%M} ({turn.tz}, UTC{local:%z}). "
        "Give due times as ISO 8601 with that offset."
    )


class OpenAIAssistant:
    """Streams a reply, running the tool calls the model asks for between steps."""

    name = "openai"

    def __init__(
        self, settings: Settings, client: AsyncOpenAI | None = None, model: str | None = None
    ) -> None:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unset"
        self.client = client or AsyncOpenAI(
            base_url=settings.openai_base_url,
            api_key=key,
            timeout=settings.openai_timeout_seconds,
            max_retries=settings.openai_max_retries,
        )
        self.model = model or settings.openai_model
        self.key_state = (
            "a key is set" if settings.openai_api_key else "no key is set: CONVSTORE_OPENAI_API_KEY"
        )
        self.max_steps = settings.assistant_max_steps
        self.system_prompt = settings.system_prompt

    def _failed(self, detail: str, exc: Exception) -> ProviderError:
        """The error clients see (generic); the provider's own message, which may name its
        URL or echo part of a key, goes to the log only."""
        log.warning("assistant provider %s failed: %s", self.name, detail, exc_info=exc)
        return ProviderError(PROVIDER_FAILED)

    async def aclose(self) -> None:
        """Close the HTTP connections to the provider."""
        await self.client.close()

    async def run(self, turn: Turn, tools: ToolRunner) -> AsyncGenerator[AssistantEvent, None]:
        messages = chat_messages(system_prompt(self.system_prompt, turn), turn.history)
        totals: dict[str, int] = {}
        for _ in range(self.max_steps):
            calls: dict[int, dict[str, str]] = {}
            text: list[str] = []
            schemas = tool_schemas() + tools.extra_schemas()
            stepping = self._step(messages, schemas, calls, text, totals)
            async with contextlib.aclosing(stepping) as step:
                async for event in step:
                    yield event
            if not calls:
                yield Usage({**totals, "model": self.model})
                return
            ordered = [calls[i] for i in sorted(calls)]
            messages.append(
                {
                    "role": "assistant",
                    "content": "".join(text) or None,
                    "tool_calls": [_tool_call(c["id"], c["name"], c["arguments"]) for c in ordered],
                }
            )
            for call in ordered:
                async for tool_step in tools.stream(call["name"], call["arguments"], call["id"]):
                    yield tool_step
                    if tool_step.outcome is not None:
                        messages.append(
                            {
                                "role": "tool",
                                "tool_call_id": call["id"],
                                "content": json.dumps(tool_step.outcome.output),
                            }
                        )
        raise ProviderError(f"the model kept calling tools after {self.max_steps} steps")

    async def _step(
        self,
        messages: list[dict[str, Any]],
        schemas: list[dict[str, Any]],
        calls: dict[int, dict[str, str]],
        text: list[str],
        totals: dict[str, int],
    ) -> AsyncGenerator[AssistantEvent, None]:
        with metrics.provider_request("openai"):
            try:
                stream = await self.client.chat.completions.create(
                    model=self.model,
                    messages=cast("list[ChatCompletionMessageParam]", messages),
                    tools=cast("list[ChatCompletionFunctionToolParam]", schemas),
                    stream=True,
                    stream_options={"include_usage": True},
                )
                async with stream:  # closes the model's stream when the turn is cut short
                    async for chunk in stream:
                        _count(totals, chunk)
                        for choice in chunk.choices:
                            delta = choice.delta
                            if delta.content:
                                text.append(delta.content)
                                yield TextDelta(delta.content)
                            for part in delta.tool_calls or ():
                                _merge(calls.setdefault(part.index, _new_call()), part)
            except openai.APITimeoutError as exc:
                raise ProviderTimeout("the model did not answer in time") from exc
            except openai.APIConnectionError as exc:
                raise self._failed(
                    f"cannot reach the model provider at {self.client.base_url} ({self.key_state})",
                    exc,
                ) from exc
            except openai.AuthenticationError as exc:
                raise self._failed(
                    f"the model provider at {self.client.base_url} refused the key "
                    f"({self.key_state}): {exc}",
                    exc,
                ) from exc
            except openai.APIError as exc:
                raise self._failed(
                    f"the model provider failed: {type(exc).__name__}: {exc}", exc
                ) from exc
        for index, call in calls.items():
            if not call["id"]:
                call["id"] = f"call_{index}"
            if not call["name"]:
                raise ProviderError("the model sent a tool call without a name")


def _count(totals: dict[str, int], chunk: Any) -> None:
    """Add a chunk's usage (sent once per step, with ``include_usage``) to the totals."""
    if chunk.usage is not None:
        for key, value in chunk.usage.model_dump(exclude_none=True).items():
            if isinstance(value, int):
                totals[key] = totals.get(key, 0) + value


def _new_call() -> dict[str, str]:
    return {"id": "", "name": "", "arguments": ""}


def _merge(call: dict[str, str], part: Any) -> None:
    """Fold one streamed tool-call fragment into the call being assembled."""
    if part.id:
        call["id"] = part.id
    if part.function is not None:
        if part.function.name:
            call["name"] += part.function.name
        if part.function.arguments:
            call["arguments"] += part.function.arguments
