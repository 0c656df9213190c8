"""Tools beyond the task tools: the library user's own Python tools, and the tools of the MCP
servers the operator configures (``CONVSTORE_MCP_SERVERS``), convstore acting as an MCP client
with the official ``mcp`` SDK.

The ``openai`` provider offers them to the model next to the task tools; their calls and
results are stored on the reply like the task tools'. The builtin assistant knows only the task
tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from convstore.config import McpServer

log = logging.getLogger("convstore.assistant")
ToolFunction = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    """A tool the assistant may call: ``call`` gets the arguments (a JSON object, checked
    against nothing but JSON) and returns JSON-serialisable output; an exception it raises is
    answered to the model as a tool error with its message."""

    name: str
    description: str
    parameters: dict[str, Any]
    """The JSON Schema of the arguments (an ``object`` schema)."""
    call: ToolFunction

    def schema(self) -> dict[str, Any]:
        """The tool in the Chat Completions ``tools`` format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass
class McpClients:
    """Sessions with the configured MCP servers, opened on first use and kept until
    :meth:`aclose`. Each session lives in a task of its own (the SDK's transports must be
    entered and left in one task); its tools are named ``<server>__<tool>``."""

    servers: Sequence[McpServer]
    timeout_seconds: float = 30.0
    _tools: list[Tool] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def tools(self) -> list[Tool]:
        """Every tool of every server (a server that cannot be reached is logged and left
        out, and tried again at the next turn)."""
        async with self._lock:
            if self._tools is None:
                found: list[Tool] = []
                complete = True
                for server in self.servers:
                    try:
                        found += await self._open(server)
                    except Exception as exc:  # any transport failure: logged, skipped
                        complete = False
                        log.warning("MCP server %s unavailable: %s", server.name, exc)
                if not complete:
                    return found
                self._tools = found
            return self._tools

    async def _open(self, server: McpServer) -> list[Tool]:
        ready: asyncio.Future[list[Tool]] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._session(server, ready), name=f"mcp-{server.name}")
        self._tasks.append(task)
        async with asyncio.timeout(self.timeout_seconds):
            return await ready

    async def _session(self, server: McpServer, ready: asyncio.Future[list[Tool]]) -> None:
        from mcp.client.stdio import stdio_client
        from mcp.client.streamable_http import streamable_http_client

        from mcp import ClientSession, StdioServerParameters

        try:
            async with contextlib.AsyncExitStack() as stack:
                if server.url is not None:
                    read, write = await stack.enter_async_context(
                        streamable_http_client(server.url)
                    )
                else:
                    assert server.command is not None
                    params = StdioServerParameters(
                        command=server.command, args=list(server.args), env=server.env or None
                    )
                    read, write = await stack.enter_async_context(stdio_client(params))
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                listed = await session.list_tools()
                tools = [_mcp_tool(server, session, t, self.timeout_seconds) for t in listed.tools]
                ready.set_result(tools)
                await self._stop.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.warning("MCP server %s closed: %s", server.name, exc)

    async def aclose(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _mcp_tool(server: McpServer, session: Any, tool: Any, timeout: float) -> Tool:
    async def call(arguments: dict[str, Any]) -> Any:
        result = await session.call_tool(tool.name, arguments, read_timeout_seconds=timeout)
        texts = [getattr(c, "text", "") for c in getattr(result, "content", None) or ()]
        if getattr(result, "is_error", False):
            raise RuntimeError("\n".join(texts) or "the tool failed")
        structured = getattr(result, "structured_content", None)
        if structured is not None:
            return structured
        joined = "\n".join(texts)
        with contextlib.suppress(ValueError):
            return json.loads(joined)
        return joined

    schema = tool.input_schema if isinstance(tool.input_schema, dict) else {"type": "object"}
    return Tool(f"{server.name}__{tool.name}"[:64], tool.description or "", schema, call)
