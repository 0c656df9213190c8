"""What every ``convstore`` command shares: the ``--database-url`` option, the settings, and
running a coroutine with its failures printed as one ``error:`` line (exit code 2)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from alembic.util.exc import CommandError as AlembicError
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from convstore.commands import failures
from convstore.config import Settings, get_settings
from convstore.errors import ConvstoreError

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CONVSTORE_DATABASE_URL",
        show_envvar=True,
        help="Database URL (default: sqlite:///convstore.db).",
    ),
]


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; raise the returned exit (code 2)."""
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(failures.EXIT_FAILURE)


def settings_for(database_url: str | None) -> Settings:
    """The process's settings, with ``--database-url`` when given."""
    settings = get_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


def run(coro: Callable[[], Awaitable[T]], database_url: str | None = None) -> T:
    """Run a command; failures print one line and exit 2 (1 is kept for ``db check``)."""
    try:
        return asyncio.run(coro())  # type: ignore[arg-type]
    except ConvstoreError as exc:
        message = exc.message
    except ValidationError as exc:
        message = failures.setting_problems(exc)
    except (SQLAlchemyError, AlembicError, OSError, ValueError) as exc:
        url = database_url or get_settings().database_url
        message = failures.database_problem(exc, url) or (
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )
    raise fail(message)
