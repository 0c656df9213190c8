"""The six task tools over the Model Context Protocol (the official ``mcp`` SDK, 2.x).

- :func:`convstore.mcp.server.build_server`: an MCP server whose tools run
  :func:`convstore.assistant.executor.execute` for one user, each call in its own transaction.
- :func:`convstore.mcp.server.run_stdio`: ``convstore mcp --user EMAIL``, one local user over
  stdin/stdout.
- :func:`convstore.mcp.http.mcp_http_app`: Streamable HTTP, mounted at ``/mcp`` in the API,
  every request authenticated by a convstore bearer token.

The acting user never comes from tool arguments: a task id of another user is "not found".
"""
