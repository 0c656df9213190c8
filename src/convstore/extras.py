"""The optional parts of convstore and the extra that installs each.

``pip install convstore`` is the storage library (SQLite); ``convstore[postgres]`` adds
PostgreSQL, ``convstore[server]`` the API, the CLI and password hashing, ``convstore[openai]``
the OpenAI-compatible provider, ``convstore[mcp]`` the MCP server, ``convstore[agents]`` the
OpenAI Agents SDK session, ``convstore[langchain]`` the LangChain chat message history,
``convstore[all]`` all of them. A part whose extra is missing fails with
:class:`MissingExtra`, one line naming it.
"""

from __future__ import annotations

import importlib.util

EXTRA_OF = {
    "asyncpg": "postgres",
    "argon2": "server",
    "fastapi": "server",
    "httptools": "server",
    "httpx": "server",
    "jwt": "server",
    "limits": "server",
    "multipart": "server",
    "python_multipart": "server",
    "rich": "server",
    "starlette": "server",
    "typer": "server",
    "uvicorn": "server",
    "uvloop": "server",
    "openai": "openai",
    "mcp": "mcp",
    "opentelemetry": "otel",
    "agents": "agents",
    "langchain_core": "langchain",
}
"""The extra that installs each optional top-level module."""


class MissingExtra(ImportError):
    """A part of convstore was used whose extra is not installed."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs the {extra} extra: pip install 'convstore[{extra}]'")
        self.extra = extra


def require(module: str, what: str) -> None:
    """Raise :class:`MissingExtra` for ``what`` unless ``module`` (a key of :data:`EXTRA_OF`)
    can be imported."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtra(what, EXTRA_OF[module])


def missing_extra(error: ModuleNotFoundError, what: str) -> MissingExtra | None:
    """The :class:`MissingExtra` behind ``error`` (an optional module is not installed), or
    None when the missing module is not an optional one (a broken install: re-raise it)."""
    extra = EXTRA_OF.get((error.name or "").partition(".")[0])
    return MissingExtra(what, extra) if extra is not None else None
