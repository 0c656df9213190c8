"""A local server that speaks the Chat Completions wire format, for the ``openai`` provider.

It is a real HTTP server (served by uvicorn in the test), answering ``POST /v1/chat/completions``
with streamed chunks — text deltas, tool calls split across several deltas, a usage chunk and
``[DONE]`` — or a full completion when ``stream`` is false. Each request plays the next
scripted step; every request body is kept for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


@dataclass
class Step:
    """One model answer: text, tool calls, an HTTP error, or a delay first."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    error_message: str = "scripted failure"
    delay: float = 0.0
    chunk_delay: float = 0.0


@dataclass
class FakeModel:
    steps: list[Step] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    abandoned: int = 0
    """Streams the client closed before the end (the server noticed and stopped sending)."""

    def app(self) -> FastAPI:
        app = FastAPI()
        app.post("/v1/chat/completions")(self._completions)
        return app

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        step = self.steps.pop(0) if self.steps else Step(text="(no script)")
        if step.delay:
            await asyncio.sleep(step.delay)
        if step.status != 200:
            error = {"error": {"message": step.error_message, "type": "server_error"}}
            return JSONResponse(error, status_code=step.status)
        if not body.get("stream"):
            return JSONResponse(_completion(body["model"], step))
        return StreamingResponse(self._stream(body["model"], step), media_type="text/event-stream")

    async def _stream(self, model: str, step: Step) -> Any:
        finished = False
        try:
            async with contextlib.aclosing(_chunks(model, step)) as chunks:
                async for chunk in chunks:
                    yield chunk
            finished = True
        finally:
            self.abandoned += not finished


def _completion(model: str, step: Step) -> dict[str, Any]:
    calls = [
        {
            "id": f"call_{i}_{uuid.uuid4().hex[:8]}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        for i, (name, args) in enumerate(step.tool_calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": step.text or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    data = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(data)}\n\n"


async def _chunks(model: str, step: Step) -> Any:
    yield _chunk(model, {"role": "assistant", "content": ""})
    for word in step.text.split(" ") if step.text else ():
        await asyncio.sleep(step.chunk_delay)
        yield _chunk(model, {"content": word + " "})
    for index, (name, args) in enumerate(step.tool_calls):
        text = json.dumps(args)
        third = max(1, len(text) // 3)
        yield _chunk(
            model,
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": f"call_{index}_{uuid.uuid4().hex[:8]}",
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                ]
            },
        )
        for start in range(0, len(text), third):
            yield _chunk(
                model,
                {
                    "tool_calls": [
                        {"index": index, "function": {"arguments": text[start : start + third]}}
                    ]
                },
            )
    yield _chunk(model, {}, "tool_calls" if step.tool_calls else "stop")
    usage = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    }
    yield f"data: {json.dumps(usage)}\n\n"
    yield "data: [DONE]\n\n"
