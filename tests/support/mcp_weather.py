"""A tiny MCP server over stdio for the chat tests: one tool, ``forecast``."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("weather")


@server.tool()
def forecast(city: str) -> dict[str, str]:
    """Tomorrow's weather in a city."""
    if city == "Atlantis":
        raise ToolError("no forecast under the sea")
    return {"city": city, "sky": "sunny"}


if __name__ == "__main__":
    server.run()
