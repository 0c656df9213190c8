"""One line for each way a command can fail before it does anything: what is wrong and how to
fix it. No traceback reaches the operator for these; the exit codes are in docs/operations.md.

- a setting that does not validate names its variable, the value and what it accepts;
- a database that cannot be reached names its URL (password masked) and asks whether the server
  runs; a PostgreSQL database that does not exist says how to create it;
- a port in use is found before anything is migrated.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from convstore.config import Settings

ENV_PREFIX = "CONVSTORE_"

EXIT_FAILURE = 2
"""A command that could not do its work (bad setting, unreachable database, port in use)."""
EXIT_DISAGREE = 1
"""``db check``: the models and the migrations disagree."""


def setting_problems(error: ValidationError) -> str:
    """``CONVSTORE_ASSISTANT_PROVIDER='gemini' is not valid: Input should be 'builtin' or
    'openai'`` for each rejected setting, joined by ``; ``."""
    parts = []
    for item in error.errors(include_url=False):
        loc = [str(part) for part in item["loc"]]
        if error.title == "Limits" and loc:
            loc = loc[-1:]  # the size limits are flat CONVSTORE_MAX_* variables
        message = item["msg"].removeprefix("Value error, ")
        if not loc:
            parts.append(message)
            continue
        name = ENV_PREFIX + "_".join(loc).upper()
        value = item.get("input")
        shown = "" if isinstance(value, dict) or value is None else f"={_short(value)}"
        parts.append(f"{name}{shown} is not valid: {message}")
    return "; ".join(parts) or str(error).splitlines()[0]


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def masked(url: str | URL) -> str:
    """The URL with its password replaced by ``***``."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparseable URL>"
    return parsed.render_as_string(hide_password=True)


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return seen


def database_problem(error: BaseException, url: str) -> str | None:
    """The one line for a failure to reach or open the database, or None for other errors."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    shown = masked(parsed)
    backend = parsed.get_backend_name()
    chain = _chain(error)
    names = {type(e).__name__ for e in chain}
    if backend.startswith("postgres"):
        if "InvalidCatalogNameError" in names or any(
            "does not exist" in str(e) and "database" in str(e) for e in chain
        ):
            database = parsed.database or "postgres"
            flags = " ".join(
                flag
                for flag in (
                    f"-h {parsed.host}" if parsed.host else "",
                    f"-p {parsed.port}" if parsed.port else "",
                    f"-U {parsed.username}" if parsed.username else "",
                )
                if flag
            )
            command = f"createdb {flags} {database}" if flags else f"createdb {database}"
            return (
                f"database {database!r} does not exist at {shown}: create it with: {command}"
                f' (or the SQL: CREATE DATABASE "{database}")'
            )
        if "InvalidPasswordError" in names or "InvalidAuthorizationSpecificationError" in names:
            return f"PostgreSQL refused the login at {shown}: check the user and password"
        if any(isinstance(e, OSError) for e in chain) or "ConnectionDoesNotExistError" in names:
            reason = next((e for e in chain if isinstance(e, OSError)), None)
            why = f" ({_os_reason(reason)})" if reason is not None else ""
            return f"cannot reach PostgreSQL at {shown}{why}: is the server running?"
    elif backend == "sqlite" and any(
        "unable to open database file" in str(e) for e in chain if isinstance(e, DBAPIError)
    ):
        return (
            f"cannot open the SQLite database {shown}: does its directory exist and is it writable?"
        )
    return None


def _os_reason(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if error.errno is not None:
        return os.strerror(error.errno).lower()
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def port_in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails because something listens there already."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False  # uvicorn reports the bad host itself
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False


def provider_problem(settings: Settings) -> str | None:
    """The line for a provider that cannot work as configured: OpenAI's own endpoint without a
    key (a local OpenAI-compatible server, given by its URL, may take none)."""
    if settings.assistant_provider != "openai":
        return None
    if settings.openai_api_key is None and settings.openai_base_url is None:
        return (
            "CONVSTORE_ASSISTANT_PROVIDER=openai needs CONVSTORE_OPENAI_API_KEY, or "
            "CONVSTORE_OPENAI_BASE_URL for a compatible server that takes no key"
        )
    return None
